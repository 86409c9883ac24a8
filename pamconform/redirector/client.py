"""A logged redirector client: every connect, write and read lands in the wire log."""

from __future__ import annotations

import errno
import os
import select
import socket
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pamconform.redirector.reply import ReplyKind, classify
from pamconform.wirelog import WireLog

#: Never read more than this from a server, whatever it sends.
MAX_REPLY_BYTES = 65536


def request(user: bytes, password: bytes) -> bytes:
    """The exact bytes the module sends.

    >>> request(b"alice", b"s3cret")
    b'alice\\ns3cret\\n'
    """
    return user + b"\n" + password + b"\n"


@dataclass
class Reply:
    """What came back on one connection after the request was sent."""

    data: bytes
    eof: bool  # the server closed its side
    timed_out: bool  # nothing more arrived within the timeout and no EOF
    reset: bool  # the connection was reset
    elapsed_s: float

    @property
    def kind(self) -> ReplyKind:
        return classify(self.data)

    def describe(self) -> str:
        how = "closed" if self.eof else "reset" if self.reset else "still open"
        if self.timed_out and not self.data:
            return f"no reply within {self.elapsed_s:.2f} s ({how})"
        return f"{self.data!r} ({self.kind.value}, {how}, after {self.elapsed_s * 1000:.0f} ms)"


class ConnectFailed(Exception):
    """The server's socket refused or could not be reached."""


class Connection:
    """One client connection to a redirector server."""

    def __init__(self, path: Path | str, log: WireLog, timeout: float) -> None:
        self.log = log
        self.timeout = timeout
        self.conn = log.new_conn()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(str(path))
        except OSError as exc:
            self.sock.close()
            log.add(self.conn, "refused", f"{errno.errorcode.get(exc.errno or 0, '?')}: {exc}")
            raise ConnectFailed(str(exc)) from exc
        log.add(self.conn, "connect", str(path))
        self.broken = False

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, data: bytes) -> bool:
        """Write all of data; False (logged) if the server has gone."""
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

    def send_chunks(self, chunks: Iterable[bytes], pause: float = 0.0) -> bool:
        """Write each chunk separately, pausing between them."""
        for i, chunk in enumerate(chunks):
            if i and pause:
                time.sleep(pause)
            if not self.send(chunk):
                return False
        return True

    def shutdown_write(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_WR)
            self.log.add(self.conn, "shut-wr")
        except OSError as exc:
            self.log.add(self.conn, "shut-err", str(exc))

    def read_reply(self, timeout: float | None = None, settle: float | None = None) -> Reply:
        """Read until the server closes, or until ``timeout`` passes with no EOF.

        With ``settle``, stop waiting for EOF once a complete-looking reply (digits,
        maybe a newline) has sat for that long with nothing more arriving.
        """
        limit = self.timeout if timeout is None else timeout
        start = time.monotonic()
        deadline = start + limit
        data = b""
        eof = reset = timed_out = False
        while len(data) < MAX_REPLY_BYTES:
            left = deadline - time.monotonic()
            if settle is not None and _looks_complete(data):
                left = min(left, settle)
            if left <= 0:
                timed_out = True
                break
            ready, _, _ = select.select([self.sock], [], [], left)
            if not ready:
                timed_out = True
                break
            try:
                chunk = self.sock.recv(4096)
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
        elapsed = time.monotonic() - start
        if timed_out:
            self.log.add(self.conn, "timeout", f"no EOF after {elapsed:.2f} s")
        return Reply(data, eof, timed_out, reset, elapsed)

    def wait_closed(self, timeout: float) -> bool:
        """True if the server closes (EOF or reset) within timeout, discarding any data."""
        reply = self.read_reply(timeout)
        return reply.eof or reply.reset

    def reset(self) -> None:
        """Abort the connection with a TCP-style reset (SO_LINGER 0)."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()
        self.log.add(self.conn, "abort")

    def close(self) -> None:
        if self.sock.fileno() != -1:
            self.sock.close()
            self.log.add(self.conn, "close")


def _looks_complete(data: bytes) -> bool:
    body = data[:-1] if data.endswith(b"\n") else data
    return bool(body) and body.isdigit()


def exchange(
    path: Path | str,
    log: WireLog,
    payload: bytes | list[bytes],
    *,
    timeout: float,
    pause: float = 0.0,
    shutdown: bool = False,
    settle: float | None = 0.5,
) -> Reply:
    """Connect, send payload (one write, or a write per chunk with pauses), read the reply."""
    with Connection(path, log, timeout) as conn:
        chunks = [payload] if isinstance(payload, bytes) else payload
        conn.send_chunks(chunks, pause)
        if shutdown:
            conn.shutdown_write()
        return conn.read_reply(settle=settle)


def socket_mode(path: Path | str) -> tuple[int, int, int] | None:
    """(mode bits, owner uid, owner gid) of the socket file, or None if not visible."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mode & 0o7777, st.st_uid, st.st_gid
