"""A logged UNIX-socket client connection and reply, shared by the protocols' clients.

Every connect, write, read and close lands in the case's wire log; every operation is
bounded by the connection's timeout. The protocol clients decide when a reply is
complete, how to read it and how to name it. (The nslcd client is not built on this: it
is copied alone into the lab's container, see ``protocols/nslcd/client.py``.)
"""

from __future__ import annotations

import errno
import os
import select
import socket
import struct
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Self, TypeVar

from pamconform.core.errors import TargetUnreachable
from pamconform.core.redaction import shown_data
from pamconform.core.wirelog import WireLog


class ConnectFailed(TargetUnreachable):
    """The server's socket is missing, refused the connection or could not be reached."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.errno = code


T = TypeVar("T")
#: Characters of a reply a verdict's message shows (the wire log keeps more).
MAX_DESCRIBED = 600

#: First and longest pause between two connects that found the listen backlog full.
BACKLOG_PAUSE_S = 0.0002
BACKLOG_MAX_PAUSE_S = 0.005


def backlog_full(exc: BaseException) -> bool:
    """Whether a connect failed only because the socket's listen backlog was full.

    Linux answers a connect to a UNIX socket whose backlog is full with EAGAIN at once
    when the client socket is non-blocking (which a Python timeout makes it); a
    blocking client such as the PAM module waits instead. It is the server being busy,
    not refusing.
    """
    code = exc.errno if isinstance(exc, (OSError, ConnectFailed)) else None
    return isinstance(exc, BlockingIOError) or code in (errno.EAGAIN, errno.EWOULDBLOCK)


def retry_while_backlog_full(attempt: Callable[[], T], deadline: float, *,
                             max_pause: float = BACKLOG_MAX_PAUSE_S,
                             on_retry: Callable[[], None] | None = None) -> T:
    """``attempt()``, repeated while it fails on a full listen backlog (see
    :func:`backlog_full`) and ``time.monotonic()`` is before ``deadline``; after that
    the last failure is raised. Pauses grow from BACKLOG_PAUSE_S to ``max_pause``.
    """
    pause = min(BACKLOG_PAUSE_S, max_pause)
    while True:
        try:
            return attempt()
        except (OSError, ConnectFailed) as exc:
            left = deadline - time.monotonic()
            if not backlog_full(exc) or left <= 0:
                raise
        if on_retry is not None:
            on_retry()
        time.sleep(min(pause, left))
        pause = min(pause * 2, max_pause)


@dataclass
class Received:
    """Bytes read after the request, and how reading ended."""

    data: bytes
    eof: bool  # the server closed its side
    stopped: bool  # reading stopped (timeout or settle) with neither EOF nor reset
    reset: bool  # the connection was reset
    elapsed_s: float


@dataclass
class Reply:
    """What came back on one connection after the request was sent.

    A protocol's reply subclasses it and names its kind (:meth:`kind_name`).
    """

    data: bytes
    eof: bool = False  # the server closed its side
    timed_out: bool = False  # nothing more arrived within the timeout and no EOF
    reset: bool = False  # the connection was reset
    elapsed_s: float = 0.0

    def kind_name(self) -> str:
        """How the protocol reads the bytes (grant, deny, malformed...)."""
        raise NotImplementedError

    def ending(self) -> str:
        """How the connection ended: closed, reset or still open."""
        return "closed" if self.eof else "reset" if self.reset else "still open"

    def describe(self) -> str:
        if self.timed_out and not self.data:
            return f"no reply within {self.elapsed_s:.2f} s ({self.ending()})"
        shown = shown_data(self.data, MAX_DESCRIBED)
        return (f"{shown} ({self.kind_name()}, {self.ending()}, after "
                f"{self.elapsed_s * 1000:.0f} ms)")


def connect_unix(path: Path | str, timeout: float | None) -> socket.socket:
    """A UNIX stream socket connected to ``path`` (non-blocking when ``timeout`` is None);
    one attempt, closed again if it fails."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    if timeout is None:
        sock.setblocking(False)
    else:
        sock.settimeout(timeout)
    try:
        sock.connect(str(path))
    except BaseException:
        sock.close()
        raise
    return sock


class Connection:
    """One logged client connection to a UNIX stream socket."""

    def __init__(self, path: Path | str, log: WireLog, timeout: float) -> None:
        self.log = log
        self.timeout = timeout
        self.conn = log.new_conn()
        self.broken = False
        try:  # like the module's blocking connect, wait out a full backlog (bounded)
            self.sock = retry_while_backlog_full(lambda: connect_unix(path, timeout),
                                                 time.monotonic() + timeout)
        except OSError as exc:
            code = exc.errno if isinstance(exc.errno, int) else None
            name = errno.errorcode.get(code or 0, "timeout" if code is None else "?")
            log.add(self.conn, "refused", f"{path}: {name}: {exc.strerror or exc}")
            raise ConnectFailed(f"{name}: {exc.strerror or exc}", code) from exc
        log.add(self.conn, "connect", str(path))

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, data: bytes) -> bool:
        """Write all of data; False (logged) if the server has gone or stopped reading."""
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError) as exc:
            self.log.add(self.conn, "send-err", f"{type(exc).__name__} after trying {len(data)} B")
            self.broken = True
            return False
        except TimeoutError:
            self.log.add(self.conn, "send-tmo", f"server stopped reading ({len(data)} B pending)")
            self.broken = True
            return False
        self.log.add(self.conn, "send", data)
        return True

    def send_chunks(self, chunks: Iterable[bytes], pause: float = 0.0, *,
                    stop_when_answered: bool = False) -> bool:
        """Write each chunk separately, pausing between them.

        With ``stop_when_answered``, stop once the server replied or closed during a pause.
        """
        for i, chunk in enumerate(chunks):
            if i and pause:
                if stop_when_answered and select.select([self.sock], [], [], pause)[0]:
                    self.log.add(self.conn, "peer-done",
                                 f"server replied or closed after {i} writes")
                    self.broken = True
                    return False
                if not stop_when_answered:
                    time.sleep(pause)
            if not self.send(chunk):
                return False
        return True

    def send_payload(self, payload: bytes | list[bytes], pause: float = 0.0, *,
                     shutdown: bool = False) -> None:
        """Write payload (one write, or one write per chunk with pauses), then half-close
        if ``shutdown`` and the server is still reading."""
        self.send_chunks([payload] if isinstance(payload, bytes) else payload, pause)
        if shutdown and not self.broken:
            self.shutdown_write()

    def shutdown_write(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_WR)
            self.log.add(self.conn, "shut-wr")
        except OSError as exc:
            self.log.add(self.conn, "shut-err", str(exc))

    def read(self, timeout: float, *, limit: int, settle: float | None = None,
             complete: Callable[[bytes], bool] | None = None) -> Received:
        """Read until EOF, reset, ``limit`` bytes or ``timeout``.

        Once ``complete(data)`` holds, wait at most ``settle`` more seconds for EOF.
        """
        start = time.monotonic()
        deadline = start + timeout
        data = b""
        eof = reset = stopped = False
        while len(data) < limit:
            left = deadline - time.monotonic()
            if settle is not None and complete is not None and complete(data):
                left = min(left, settle)
            if left <= 0 or not select.select([self.sock], [], [], left)[0]:
                stopped = True
                break
            try:
                chunk = self.sock.recv(min(4096, limit - len(data)))
            except ConnectionResetError:
                reset = True
                self.log.add(self.conn, "reset")
                break
            except OSError as exc:
                self.log.add(self.conn, "recv-err", str(exc))
                reset = True
                break
            if not chunk:
                eof = True
                self.log.add(self.conn, "eof")
                break
            data += chunk
            self.log.add(self.conn, "recv", chunk)
        return Received(data, eof, stopped, reset, time.monotonic() - start)

    def wait_closed(self, timeout: float, limit: int = 65536) -> bool:
        """True if the server closes (EOF or reset) within timeout, discarding any data."""
        got = self.read(timeout, limit=limit)
        return got.eof or got.reset

    def reset(self) -> None:
        """Abort the connection (SO_LINGER 0)."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()
        self.log.add(self.conn, "abort")

    def close(self) -> None:
        if self.sock.fileno() != -1:
            self.sock.close()
            self.log.add(self.conn, "close")


def socket_state(path: Path | str) -> os.stat_result | None:
    """lstat of a socket file, or None if it is not there (or not visible)."""
    try:
        return os.lstat(path)
    except OSError:
        return None
