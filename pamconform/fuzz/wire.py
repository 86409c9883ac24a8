"""Sending fuzz inputs: a lean path for the fuzz loop, a logged one for replays.

Every socket operation has a timeout. The lean path keeps no wire log (it runs
thousands of times a second); replays and regression cases go through the logged
client of ``pamconform.redirector.client`` so their evidence shows every byte.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from pamconform.fuzz.model import Exec
from pamconform.redirector.client import MAX_REPLY_BYTES, ConnectFailed, Connection
from pamconform.redirector.reply import ReplyKind, classify
from pamconform.wirelog import WireLog

#: Once a complete-looking reply has sat this long with no EOF, stop waiting for EOF.
SETTLE_S = 0.25


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
        return (f"{self.reply[:64]!r} ({self.kind.value}, {how}, after "
                f"{self.elapsed_s * 1000:.0f} ms)")


def _looks_complete(data: bytes) -> bool:
    body = data[:-1] if data.endswith(b"\n") else data
    return bool(body) and body.isdigit()


def run_exec(path: str, ex: Exec, timeout: float) -> Outcome:
    """Connect, write the chunks (pausing), maybe half-close, read until EOF or timeout."""
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
        return _read(sock, timeout)
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
        reply = conn.read_reply(settle=SETTLE_S)
    return Outcome(reply.data, reply.eof, reply.reset, reply.timed_out, False, reply.elapsed_s)
