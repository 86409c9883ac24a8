"""Fresh tokens for the token fuzz model, minted ahead in threads while the fuzzer sends."""

from __future__ import annotations

import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from pamconform.protocols.token.minting import SOCKET_DIR, Minted, MintFailed, TokenSource, spend

#: A minted token older than this is spent and replaced (its server may expire).
MAX_TOKEN_AGE = 5.0


class Minter:
    """Fresh tokens from the token command, ``ahead`` of them minted in threads.

    With a fixed socket (the server runs with ``--socket PATH``) tokens are minted one
    at a time, since two servers cannot share the path.
    """

    def __init__(self, command: str, *, socket: Path | None = None,
                 socket_dir: Path = SOCKET_DIR, command_timeout: float = 10.0,
                 ready_timeout: float = 2.0, ahead: int = 2,
                 max_age: float = MAX_TOKEN_AGE) -> None:
        self.command = command
        self.socket = socket
        self.socket_dir = socket_dir
        self.command_timeout = command_timeout
        self.ready_timeout = ready_timeout
        self.ahead = 0 if socket is not None else max(0, ahead)
        self.max_age = max_age
        self.sources: list[TokenSource] = []
        self._lock = threading.Lock()
        self._local = threading.local()
        self._pool = (ThreadPoolExecutor(self.ahead, thread_name_prefix="mint")
                      if self.ahead else None)
        self._queue: deque[Future[tuple[Minted, float]]] = deque()
        self.mints = 0
        self.mint_seconds = 0.0
        self.wait_seconds = 0.0
        self.discarded = 0

    def _source(self) -> TokenSource:
        source: TokenSource | None = getattr(self._local, "source", None)
        if source is None:
            source = TokenSource(self.command, socket=self.socket, socket_dir=self.socket_dir,
                                 command_timeout=self.command_timeout,
                                 ready_timeout=self.ready_timeout)
            with self._lock:
                self.sources.append(source)
            self._local.source = source
        return source

    def _mint(self) -> tuple[Minted, float]:
        started = time.monotonic()
        minted = self._source().mint()
        return minted, time.monotonic() - started

    def get(self) -> Minted:
        """A fresh token whose server waits (raises MintFailed)."""
        started = time.monotonic()
        try:
            while True:
                if self._pool is None:
                    minted, took = self._mint()
                else:
                    while len(self._queue) < self.ahead:
                        self._queue.append(self._pool.submit(self._mint))
                    future = self._queue.popleft()
                    self._queue.append(self._pool.submit(self._mint))
                    try:
                        minted, took = future.result(
                            timeout=self.command_timeout + self.ready_timeout + 5)
                    except TimeoutError:
                        raise MintFailed("the token command did not finish in time") from None
                self.mints += 1
                self.mint_seconds += took
                if minted.age <= self.max_age:
                    return minted
                spend(minted.socket)
                self.discarded += 1
        finally:
            self.wait_seconds += time.monotonic() - started

    def minted(self) -> list[Minted]:
        with self._lock:
            return [m for s in self.sources for m in s.minted]

    def close(self) -> None:
        """Stop minting; spend every token not used (its server exits)."""
        if self._pool is not None:
            for future in self._queue:
                future.cancel()
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._queue.clear()
        for source in self.sources:
            source.close()

    def __enter__(self) -> Minter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
