"""Sending one nslcd fuzz attempt and reading what comes back, every step bounded.

The reply is read as whatever action its own header names (a daemon that answers an
unknown action as ``PAM_AUTHC`` is read as granting), until it decodes, the daemon
closes, the deadline passes or too much arrives. Stalled attempts (``Exec.stall_s``)
are waited out in background threads (:class:`StallPool`) so the run goes on.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from pamconform.core.wirelog import WireLog

from . import codec
from .fuzz_items import Exec

#: Most bytes read for one reply (a PAM reply is a few hundred bytes).
MAX_REPLY = 64 * 1024


@dataclass(frozen=True)
class Outcome:
    """What one attempt got: ``kind`` is reply, closed, reset, timeout, refused or
    malformed; ``reply`` the decoded reply (kind reply)."""

    kind: str
    received: bytes = b""
    reply: codec.Reply | None = None
    detail: str = ""
    elapsed_s: float = 0.0

    @property
    def grant(self) -> codec.Entry | None:
        """The granting entry: authc SUCCESS (PAM_AUTHC) or SUCCESS (PAM_PWMOD)."""
        entry = self.reply.entry if self.reply is not None else None
        if isinstance(entry, codec.AuthcResult) and entry.granted:
            return entry
        if (self.reply is not None and self.reply.action == codec.Action.PAM_PWMOD
                and isinstance(entry, codec.CodeResult) and entry.granted):
            return entry
        return None

    def describe(self) -> str:
        if self.kind != "reply" or self.reply is None:
            got = f" after {len(self.received)} reply bytes" if self.received else ""
            return f"{self.kind}{got}" + (f" ({self.detail})" if self.detail else "")
        entry = self.reply.entry
        try:
            action = codec.Action(self.reply.action).name
        except ValueError:
            action = f"0x{self.reply.action:08x}"
        if entry is None:
            return f"{action} reply with no entry"
        if isinstance(entry, codec.AuthcResult):
            name = entry.username.decode("utf-8", "replace")
            return (f"{action} authc {codec.code_name(entry.authc)} for {name!r}, authz "
                    f"{codec.code_name(entry.authz)}")
        if isinstance(entry, codec.CodeResult):
            return f"{action} {codec.code_name(entry.code)}"
        return f"{action} {type(entry).__name__}"


def _read(sock: socket.socket, deadline: float, log: WireLog | None, conn: int,
          start: float) -> Outcome:
    data = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return Outcome("timeout", data, None, "no reply or close in time",
                           time.monotonic() - start)
        sock.settimeout(left)
        try:
            chunk = sock.recv(min(65536, MAX_REPLY + 1 - len(data)))
        except TimeoutError:
            continue
        except OSError as exc:
            return Outcome("reset", data, None, type(exc).__name__, time.monotonic() - start)
        if log is not None and chunk:
            log.add(conn, "recv", chunk)
        if not chunk:
            return Outcome("closed", data, None, "", time.monotonic() - start)
        data += chunk
        if len(data) < 8:
            continue
        action = int(codec.Reader(data[4:8]).int32())
        try:
            reply, _ = codec.decode_reply(data, action)
        except codec.Truncated:
            if len(data) > MAX_REPLY:
                return Outcome("malformed", data, None, f"more than {MAX_REPLY} bytes",
                               time.monotonic() - start)
            continue
        except codec.DecodeError as exc:
            return Outcome("malformed", data, None, str(exc), time.monotonic() - start)
        return Outcome("reply", data, reply, "", time.monotonic() - start)


def _connect(path: str, timeout: float) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
    except OSError:
        sock.close()
        raise
    return sock


def _hold(path: str, held: tuple[bytes, ...], timeout: float) -> list[socket.socket]:
    """Clients that send a partial request each and then say nothing."""
    out = []
    for data in held:
        try:
            sock = _connect(path, timeout)
        except OSError:
            continue
        with contextlib.suppress(OSError):
            if data:
                sock.sendall(data)
        out.append(sock)
    return out


def run_exec(path: str, ex: Exec, timeout: float, *, log: WireLog | None = None) -> Outcome:
    """Send ``ex`` and read the reply: within ``timeout`` s of the last write, or within
    ``ex.stall_s`` for a stall. Never raises for what the daemon does."""
    held = _hold(path, ex.held, timeout)
    start = time.monotonic()
    conn = log.new_conn() if log is not None else 0
    try:
        try:
            sock = _connect(path, timeout)
        except OSError as exc:
            if log is not None:
                log.add(conn, "refused", f"{type(exc).__name__}")
            return Outcome("refused", detail=f"{type(exc).__name__}: {exc.strerror or exc}")
        with sock:
            for i, chunk in enumerate(ex.chunks):
                try:
                    sock.settimeout(timeout)
                    sock.sendall(chunk)
                except OSError as exc:  # the daemon stopped reading or closed: read what came
                    if log is not None:
                        log.add(conn, "error", f"write: {type(exc).__name__}")
                    break
                if log is not None:
                    log.add(conn, "send", chunk)
                if ex.pause_after(i) > 0:
                    time.sleep(ex.pause_after(i))
            if ex.shutdown:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_WR)
                if log is not None:
                    log.add(conn, "shutdown", "write side closed")
            wait = ex.stall_s if ex.stalls else timeout
            out = _read(sock, time.monotonic() + wait, log, conn, start)
            if log is not None:
                log.add(conn, "end", out.describe())
            return out
    finally:
        for h in held:
            h.close()


def listening(path: str, wait: float) -> str:
    """How the daemon's socket answers a connect, tried for up to ``wait`` s: ``accepts``;
    ``busy``, its queue of waiting connections full the whole time (EAGAIN, or a connect
    that times out: the daemon accepts no one); or ``gone``, nothing listens on ``path``."""
    deadline = time.monotonic() + wait
    while True:
        try:
            _connect(path, max(0.05, min(1.0, deadline - time.monotonic()))).close()
        except (BlockingIOError, TimeoutError):
            if time.monotonic() >= deadline:
                return "busy"
            time.sleep(0.05)
            continue
        except OSError:
            return "gone"
        return "accepts"


def dies(path: str, window: float, every: float = 0.05) -> bool:
    """Whether the daemon stops accepting connections within ``window`` s (a dying
    process may still accept for a moment after it dropped the connection)."""
    deadline = time.monotonic() + window
    while True:
        if listening(path, max(every, deadline - time.monotonic())) == "gone":
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(every)


class StallPool:
    """Stalled attempts waited out in background threads, a few at a time."""

    def __init__(self, path: str, timeout: float, slots: int) -> None:
        self.path, self.timeout, self.slots = path, timeout, slots
        self._pool = ThreadPoolExecutor(max_workers=slots, thread_name_prefix="nslcd-stall")
        self._pending: list[tuple[int, Exec, Future[Outcome]]] = []
        self._lock = threading.Lock()

    @property
    def full(self) -> bool:
        with self._lock:
            return len(self._pending) >= self.slots

    def start(self, i: int, ex: Exec) -> None:
        fut = self._pool.submit(run_exec, self.path, ex, self.timeout)
        with self._lock:
            self._pending.append((i, ex, fut))

    def _take(self, wait: bool) -> list[tuple[int, Exec, Outcome]]:
        with self._lock:
            pending = list(self._pending)
        done = []
        for entry in pending:
            i, ex, fut = entry
            if wait or fut.done():
                done.append((i, ex, fut.result()))
                with self._lock:
                    self._pending.remove(entry)
        return done

    def poll(self) -> list[tuple[int, Exec, Outcome]]:
        return self._take(False)

    def drain(self) -> list[tuple[int, Exec, Outcome]]:
        return self._take(True)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
