"""Sending fuzz inputs: a lean path for the fuzz loop, a logged one for replays.

Every socket operation has a timeout. The lean path keeps no wire log (it runs
thousands of times a second); replays and regression cases go through the logged
client of ``pamconform.protocols.redirector.client`` so their evidence shows every byte.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from pamconform.core.redaction import shown_data
from pamconform.core.wirelog import WireLog
from pamconform.protocols.redirector.client import MAX_REPLY_BYTES, ConnectFailed, Connection
from pamconform.protocols.redirector.fuzz_items import Exec
from pamconform.protocols.redirector.reply import ReplyKind, classify

#: Once a complete-looking reply has sat this long with no EOF, stop waiting for EOF.
SETTLE_S = 0.25
#: Characters of a reply :meth:`Outcome.describe` shows.
SHOWN_CHARS = 160


@dataclass(frozen=True)
class Outcome:
    """What came back on one connection."""

    reply: bytes = b""
    eof: bool = False
    reset: bool = False
    timed_out: bool = False
    refused: bool = False  # the connect failed
    elapsed_s: float = 0.0
    error: str = ""

    @property
    def kind(self) -> ReplyKind:
        return classify(self.reply)

    @property
    def closed(self) -> bool:
        return self.eof or self.reset

    def describe(self) -> str:
        if self.refused:
            return f"connection refused ({self.error})"
        how = "closed" if self.eof else "reset" if self.reset else "still open"
        if self.timed_out and not self.reply:
            return f"no reply within {self.elapsed_s:.2f} s ({how})"
        return (f"{shown_data(self.reply, SHOWN_CHARS)} ({self.kind.value}, {how}, after "
                f"{self.elapsed_s * 1000:.0f} ms)")


def _looks_complete(data: bytes) -> bool:
    body = data[:-1] if data.endswith(b"\n") else data
    return bool(body) and body.isdigit()


def read_wait(ex: Exec, timeout: float) -> float:
    """How long to read after the last write: a stall waits for the server to give up."""
    return max(timeout, ex.stall_s) if ex.stalls else timeout


def run_exec(path: str, ex: Exec, timeout: float) -> Outcome:
    """Connect, write the chunks (pausing), maybe half-close, read until EOF or timeout
    (a stall: until EOF or its stall time)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        try:
            sock.connect(path)
        except OSError as exc:
            return Outcome(refused=True, error=type(exc).__name__)
        broken = False
        last = len(ex.chunks) - 1
        for i, chunk in enumerate(ex.chunks):
            try:
                sock.sendall(chunk)
            except OSError:  # the server left or stopped reading: read what it said
                broken = True
                break
            if i < last:
                pause = ex.pause_after(i)
                if pause > 0:
                    time.sleep(pause)
        if ex.shutdown and not broken:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_WR)
        return _read(sock, read_wait(ex, timeout))
    finally:
        sock.close()


def _read(sock: socket.socket, timeout: float) -> Outcome:
    start = time.monotonic()
    deadline = start + timeout
    data = b""
    eof = reset = timed_out = False
    while len(data) < MAX_REPLY_BYTES:
        left = deadline - time.monotonic()
        if _looks_complete(data):
            left = min(left, SETTLE_S)
        if left <= 0:
            timed_out = True
            break
        sock.settimeout(left)
        try:
            chunk = sock.recv(4096)
        except TimeoutError:
            timed_out = True
            break
        except OSError:
            reset = True
            break
        if not chunk:
            eof = True
            break
        data += chunk
    return Outcome(data, eof, reset, timed_out, False, time.monotonic() - start)


def run_burst(path: str, execs: tuple[Exec, ...], timeout: float) -> list[Outcome]:
    """Open every connection, write every request, then read all replies at once.

    Members are single writes without pauses; a member that is incomplete and not
    half-closed is a stalled client: it is read like the others but closed at the end.
    """
    n = len(execs)
    outcomes: list[Outcome | None] = [None] * n
    socks: dict[int, socket.socket] = {}
    bufs = [b""] * n
    start = time.monotonic()
    sel = selectors.DefaultSelector()
    try:
        for i in range(n):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            try:
                sock.connect(path)
            except OSError as exc:
                sock.close()
                outcomes[i] = Outcome(refused=True, error=type(exc).__name__)
                continue
            socks[i] = sock
        for i, sock in socks.items():
            ex = execs[i]
            try:
                sock.sendall(ex.payload)
                if ex.shutdown:
                    sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            sock.setblocking(False)
            sel.register(sock, selectors.EVENT_READ, i)
        deadline = start + timeout
        waiting = set(socks)
        # stalled clients are not waited for, only read if they happen to get a reply
        must = {i for i in waiting if execs[i].complete}
        while must:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            for key, _ in sel.select(left):
                i = int(key.data)
                sock = socks[i]
                try:
                    chunk: bytes | None = sock.recv(4096)
                except BlockingIOError:
                    continue
                except OSError:
                    outcomes[i] = Outcome(bufs[i], False, True, False, False,
                                          time.monotonic() - start)
                    chunk = None
                if chunk:
                    bufs[i] += chunk
                    if len(bufs[i]) < MAX_REPLY_BYTES:
                        continue
                elif chunk is not None:
                    outcomes[i] = Outcome(bufs[i], True, False, False, False,
                                          time.monotonic() - start)
                sel.unregister(sock)
                waiting.discard(i)
                must.discard(i)
        elapsed = time.monotonic() - start
        for i in waiting:
            # no EOF: a reply that looks complete is accepted (like SETTLE_S), else no reply
            outcomes[i] = Outcome(bufs[i], False, False, not _looks_complete(bufs[i]),
                                  False, elapsed)
    finally:
        sel.close()
        for sock in socks.values():
            sock.close()
    return [o if o is not None else Outcome(timed_out=True, elapsed_s=timeout) for o in outcomes]


def probe(path: str, timeout: float) -> bool:
    """Whether the server still accepts and serves connections (retried for ``timeout``).

    An empty request is sent (connect, half-close): a live server answers or closes; a
    connection that is only reset was queued on a listener that died with its process.
    """
    deadline = time.monotonic() + timeout
    time.sleep(0.02)  # let a dying process finish dying
    while True:
        out = run_exec(path, Exec((b"",)), max(0.2, min(1.0, timeout)))
        if not out.refused and not (out.reset and not out.reply):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def replay_logged(path: Path | str, ex: Exec, log: WireLog, timeout: float) -> Outcome:
    """``run_exec`` through the logged client: every byte lands in ``log``."""
    try:
        conn = Connection(path, log, timeout)
    except ConnectFailed as exc:
        return Outcome(refused=True, error=str(exc))
    with conn:
        last = len(ex.chunks) - 1
        for i, chunk in enumerate(ex.chunks):
            if not conn.send(chunk):
                break
            if i < last and ex.pause_after(i) > 0:
                time.sleep(ex.pause_after(i))
        if ex.shutdown and not conn.broken:
            conn.shutdown_write()
        reply = conn.read_reply(read_wait(ex, timeout), settle=SETTLE_S)
    return Outcome(reply.data, reply.eof, reply.reset, reply.timed_out, False, reply.elapsed_s)


@dataclass
class _Parked:
    sock: socket.socket
    ex: Exec
    tag: int
    started: float
    data: bytes = b""
    last: float = 0.0


class StallPool:
    """Stalled attempts, waited out in the background of the fuzz loop.

    A stall costs the server's idle timeout; parked here, it costs a slot instead of
    that much fuzzing time. Each is read until the server closes it (or replies and then
    nothing more comes for ``SETTLE_S``), or until its stall time runs out.
    """

    def __init__(self, path: str, timeout: float, slots: int = 4) -> None:
        self.path = path
        self.timeout = timeout
        self.slots = slots
        self._parked: dict[int, _Parked] = {}
        self._sel = selectors.DefaultSelector()

    def __len__(self) -> int:
        return len(self._parked)

    @property
    def full(self) -> bool:
        return len(self._parked) >= self.slots

    def start(self, ex: Exec, tag: int) -> Outcome | None:
        """Connect and write; None once parked, or the outcome if it ended at once."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.path)
        except OSError as exc:
            sock.close()
            return Outcome(refused=True, error=type(exc).__name__)
        try:
            for i, chunk in enumerate(ex.chunks):
                if i and ex.pause_after(i - 1) > 0:
                    time.sleep(ex.pause_after(i - 1))
                sock.sendall(chunk)
        except OSError:  # the server left already: read what it said
            try:
                return _read(sock, self.timeout)
            finally:
                sock.close()
        sock.setblocking(False)
        now = time.monotonic()
        self._parked[sock.fileno()] = _Parked(sock, ex, tag, now, last=now)
        self._sel.register(sock, selectors.EVENT_READ, sock.fileno())
        return None

    def poll(self, wait: float = 0.0) -> list[tuple[int, Exec, Outcome]]:
        """The attempts that ended (read for up to ``wait`` seconds)."""
        done: list[tuple[int, Exec, Outcome]] = []
        if not self._parked:
            return done
        for key, _ in self._sel.select(max(0.0, wait)):
            p = self._parked[int(key.data)]
            try:
                chunk = p.sock.recv(4096)
            except BlockingIOError:
                continue
            except OSError:
                done.append(self._finish(p, reset=True))
                continue
            if not chunk:
                done.append(self._finish(p, eof=True))
                continue
            p.data += chunk
            p.last = time.monotonic()
            if len(p.data) >= MAX_REPLY_BYTES:
                done.append(self._finish(p))
        now = time.monotonic()
        for p in list(self._parked.values()):
            if now >= p.started + p.ex.stall_s:
                done.append(self._finish(p, timed_out=not _looks_complete(p.data)))
            elif _looks_complete(p.data) and now - p.last >= SETTLE_S:
                done.append(self._finish(p))
        return done

    def drain(self) -> list[tuple[int, Exec, Outcome]]:
        """Wait for every parked attempt to end (each bounded by its stall time)."""
        done: list[tuple[int, Exec, Outcome]] = []
        while self._parked:
            done.extend(self.poll(0.05))
        return done

    def _finish(self, p: _Parked, *, eof: bool = False, reset: bool = False,
                timed_out: bool = False) -> tuple[int, Exec, Outcome]:
        del self._parked[p.sock.fileno()]
        self._sel.unregister(p.sock)
        p.sock.close()
        out = Outcome(p.data, eof, reset, timed_out, False, time.monotonic() - p.started)
        return p.tag, p.ex, out

    def close(self) -> None:
        for p in list(self._parked.values()):
            self._sel.unregister(p.sock)
            p.sock.close()
        self._parked.clear()
        self._sel.close()
