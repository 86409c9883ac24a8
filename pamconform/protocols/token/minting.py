"""Tokens for the cases: a fresh one per attempt from the user's token command.

The token server under test is started by a command the user gives
(``--token-command CMD``, run with ``sh -c``): each run prints one token and leaves a
server waiting for it.  Every case mints its own tokens, since a token is single use.
With ``--token TOKEN`` there is only one token: the first case that needs exactly one
gets it, every other case is SKIPPED.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from pamconform.core.errors import HarnessError
from pamconform.core.outcome import Skip
from pamconform.core.redaction import register_token

SOCKET_DIR = Path("/tmp")
SOCKET_PREFIX = "transient-token"
MAX_UID = 2**32 - 2
MAX_PID = 2**31 - 1

_TOKEN = re.compile(r"TTK(0|[1-9][0-9]*):([1-9][0-9]*):([A-Za-z0-9+/]{32})")
_IN_TEXT = re.compile(r"(?<![A-Za-z0-9+/])TTK[0-9]+:[0-9]+:[A-Za-z0-9+/]{32}(?![A-Za-z0-9+/=])")

ONE_SHOT_USED = ("the one token given with --token was used by an earlier case; give "
                 "--token-command CMD to run every case with fresh tokens")


@dataclass(frozen=True)
class Token:
    """A transient token ``TTK<uid>:<pid>:<auth>``, parsed strictly."""

    uid: int
    pid: int
    auth: str

    @classmethod
    def parse(cls, text: str) -> Token:
        """Parse one token; raise ValueError saying what is wrong.

        >>> Token.parse("TTK1000:13551:ZvGpYyBawL0ZXo/HjdYm/qBc0c/UE8Ds").pid
        13551
        """
        match = _TOKEN.fullmatch(text)
        if match is None:
            raise ValueError(f"{_shorten(text)!r} is not a token: expected "
                             "TTK<uid>:<pid>:<32 base64 characters>")
        uid, pid = int(match.group(1)), int(match.group(2))
        if uid > MAX_UID or pid > MAX_PID:
            raise ValueError(f"{_shorten(text)!r}: uid or pid out of range")
        return cls(uid, pid, match.group(3))

    @property
    def text(self) -> str:
        return f"TTK{self.uid}:{self.pid}:{self.auth}"

    @property
    def raw(self) -> bytes:
        return self.text.encode("ascii")

    @property
    def head(self) -> str:
        """The public part, ``TTK<uid>:<pid>:``."""
        return f"TTK{self.uid}:{self.pid}:"

    def socket_path(self, directory: Path = SOCKET_DIR) -> Path:
        """``<directory>/transient-token-<uid>-<pid>``."""
        return directory / f"{SOCKET_PREFIX}-{self.uid}-{self.pid}"


def find_token(text: str) -> Token | None:
    """The first token printed in ``text`` (a command's output), or None."""
    for match in _IN_TEXT.finditer(text):
        with contextlib.suppress(ValueError):
            return Token.parse(match.group(0))
    return None


def _shorten(text: str, limit: int = 80) -> str:
    """``text`` cut to ``limit`` characters, every run that may be a token's secret (16 or
    more base64 characters) hidden: a near-token is a secret too, and is not registered."""
    text = _SECRET_RUN.sub(lambda m: f"\u2039{len(m.group())} characters hidden\u203a", text)
    return text if len(text) <= limit else text[:limit] + "..."


_SECRET_RUN = re.compile(r"[A-Za-z0-9+/=_-]{16,}")


@dataclass
class Minted:
    """A token with the socket its server listens on."""

    token: Token
    socket: Path
    #: time.monotonic() when the token was printed
    at: float
    #: whether the socket file was seen before the token was handed out
    ready: bool

    def __post_init__(self) -> None:  # a token is a secret: never in a report or on a console
        register_token(self.token.raw, len(self.token.head))

    @property
    def age(self) -> float:
        return time.monotonic() - self.at


class MintFailed(HarnessError):
    """The token command failed or printed no token."""


class TokenSource:
    """Mints tokens: runs the token command once per token, or hands out one token."""

    def __init__(
        self,
        command: str | None = None,
        token: str | None = None,
        *,
        socket: Path | None = None,
        socket_dir: Path = SOCKET_DIR,
        command_timeout: float = 10.0,
        ready_timeout: float = 2.0,
    ) -> None:
        if (command is None) == (token is None):
            raise ValueError("give exactly one of command and token")
        self.command = command
        self.socket = socket
        self.socket_dir = socket_dir
        self.command_timeout = command_timeout
        self.ready_timeout = ready_timeout
        self.minted: list[Minted] = []
        self._one: Token | None = Token.parse(token) if token is not None else None
        self._one_used = False
        self._pending: Minted | None = None
        self._running: list[subprocess.Popen[bytes]] = []
        # a case's thread may still mint while a stopped run closes the source: a token
        # minted after close() is spent at once, its command stopped
        self._lock = threading.Lock()
        self._closed = False

    @property
    def one_shot(self) -> bool:
        """Whether only one token was given (``--token``)."""
        return self.command is None

    def describe(self) -> str:
        where = str(self.socket) if self.socket else f"{self.socket_dir}/{SOCKET_PREFIX}-*"
        how = f"token command {self.command!r}" if self.command else "one given token"
        return f"{how}, sockets {where}"

    def socket_for(self, token: Token) -> Path:
        """The socket a token's server listens on: the override, or derived from it."""
        return self.socket if self.socket is not None else token.socket_path(self.socket_dir)

    def require(self, count: int) -> None:
        """Skip the case unless ``count`` fresh tokens can be had."""
        if not self.one_shot:
            return
        if self._one_used:
            raise Skip(ONE_SHOT_USED)
        if count > 1:
            raise Skip(f"this case needs {count} fresh tokens and --token gives one; give "
                       "--token-command CMD to run it")

    def mint(self) -> Minted:
        """A fresh token whose server is listening (or Skip in one-shot mode once used)."""
        if self.one_shot:
            if self._one_used or self._one is None:
                raise Skip(ONE_SHOT_USED)
            self._one_used = True
            token = self._one
            minted = Minted(token, self.socket_for(token), time.monotonic(),
                            self._wait_ready(self.socket_for(token), 0.0))
            self.minted.append(minted)
            return minted
        pending, self._pending = self._pending, None
        if pending is not None:
            if pending.age < 5.0 and _is_socket(pending.socket):
                return pending
            spend(pending.socket)
        minted = self._run_command()
        with self._lock:
            if not self._closed:
                self.minted.append(minted)
                return minted
        spend(minted.socket)
        raise MintFailed("the run is stopping: the token just minted was spent")

    def preflight(self) -> Minted:
        """Mint one token now (to check the command); the next ``mint`` hands it out."""
        minted = self.mint()
        self._pending = minted
        return minted

    def _run_command(self) -> Minted:
        assert self.command is not None
        with tempfile.TemporaryFile() as err:
            proc = subprocess.Popen(
                ["sh", "-c", self.command], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=err, start_new_session=True)
            with self._lock:
                stopping = self._closed
                if not stopping:
                    self._running.append(proc)  # close() stops it, whatever happens here
            if stopping:
                _kill_group(proc)
                raise MintFailed("the run is stopping: no token minted")
            try:
                out, token = self._read_token(proc)
            except BaseException:
                _kill_group(proc)
                raise
            if token is None:
                status = _finish(proc)
                err.seek(0)
                tail = err.read().decode(errors="replace").strip().splitlines()[-3:]
                why = (f"exited with status {status}" if status is not None
                       else f"printed no token within {self.command_timeout:g} s")
                shown = f"; stderr: {_shorten(' | '.join(tail), 240)}" if tail else ""
                printed = f"; stdout: {_shorten(out.strip())!r}" if out.strip() else ""
                raise MintFailed(f"token command {why} without printing a token"
                                 f"{printed}{shown}")
        at = time.monotonic()
        # a daemonising command exits right after printing; a foreground one keeps running
        try:
            proc.wait(timeout=0.5)
            if proc.stdout is not None:
                proc.stdout.close()
            with self._lock:
                if proc in self._running:
                    self._running.remove(proc)
        except subprocess.TimeoutExpired:
            pass  # stays in _running: close() stops it
        path = self.socket_for(token)
        return Minted(token, path, at, self._wait_ready(path, self.ready_timeout))

    def _read_token(self, proc: subprocess.Popen[bytes]) -> tuple[str, Token | None]:
        """Read stdout until a token appears, the command closes it, or the timeout."""
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        deadline = time.monotonic() + self.command_timeout
        buf = b""
        while len(buf) < 65536:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                break
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            buf += chunk
            if b"\n" in chunk:
                token = find_token(buf.decode(errors="replace"))
                if token is not None:
                    return buf.decode(errors="replace"), token
        text = buf.decode(errors="replace")
        return text, find_token(text)

    @staticmethod
    def _wait_ready(path: Path, timeout: float) -> bool:
        """Wait (without connecting: that would spend the token) for the socket file."""
        deadline = time.monotonic() + timeout
        while True:
            if _is_socket(path):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)

    def close(self) -> None:
        """Spend tokens still waiting (their servers exit) and stop foreground commands;
        a token minted after this is spent at once."""
        with self._lock:
            self._closed = True
            minted, running = list(self.minted), list(self._running)
            self._running.clear()
        if not self.one_shot:
            for m in minted:
                if _is_socket(m.socket):
                    spend(m.socket)
        for proc in running:
            _kill_group(proc)


def _is_socket(path: Path) -> bool:
    try:
        return stat.S_ISSOCK(os.lstat(path).st_mode)
    except OSError:
        return False


def spend(path: Path, timeout: float = 1.0) -> None:
    """Connect and hang up without a token: a single-use server refuses and exits."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        with contextlib.suppress(OSError):
            s.connect(str(path))
            s.shutdown(socket.SHUT_WR)
            s.recv(64)


def _finish(proc: subprocess.Popen[bytes]) -> int | None:
    """The exit status after a short wait, or None (killed) if it is still running."""
    try:
        return proc.wait(timeout=1.0)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        return None


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)
    if proc.stdout is not None:
        proc.stdout.close()
