"""A logged transient-token client: every connect, write and read lands in the wire log."""

from __future__ import annotations

import errno
import os
import select
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from pamconform.redirector.client import ConnectFailed as _ConnectFailed
from pamconform.wirelog import WireLog

PASS_REPLY = b"PASS\n\0"
FAIL_REPLY = b"FAIL\n\0"
#: The module reads exactly this many bytes.
REPLY_LEN = 6
#: Never read more than this from a server, whatever it sends.
MAX_REPLY_BYTES = 4096


class ReplyKind(Enum):
    """How a reply reads."""

    PASS = "PASS"
    FAIL = "FAIL"
    EMPTY = "no reply"
    MALFORMED = "malformed"


def classify(data: bytes) -> ReplyKind:
    """PASS and FAIL are the exact 6-byte replies; anything else is malformed.

    >>> classify(b"PASS\\n\\0"), classify(b"FAIL\\n"), classify(b"")
    (<ReplyKind.PASS: 'PASS'>, <ReplyKind.MALFORMED: 'malformed'>, <ReplyKind.EMPTY: 'no reply'>)
    """
    if data == PASS_REPLY:
        return ReplyKind.PASS
    if data == FAIL_REPLY:
        return ReplyKind.FAIL
    return ReplyKind.EMPTY if not data else ReplyKind.MALFORMED


def module_grants(data: bytes) -> bool:
    """Whether a module reading exactly 6 bytes (the original's way) would grant.

    >>> module_grants(b"PASS\\n\\0trailing"), module_grants(b"PASS\\n")
    (True, False)
    """
    return data[:REPLY_LEN] == PASS_REPLY


class ConnectFailed(_ConnectFailed):
    """The socket is missing, refused the connection or could not be reached."""

    def __init__(self, message: str, code: int | None) -> None:
        super().__init__(message)
        self.errno = code


@dataclass
class TokenReply:
    """What came back on one connection (or why there was no connection)."""

    data: bytes
    eof: bool = False  # the server closed its side
    timed_out: bool = False  # nothing more within the timeout and no EOF
    reset: bool = False  # the connection was reset
    elapsed_s: float = 0.0
    refused: str | None = None  # no connection at all: why
    sent_all: bool = True  # False if the server stopped reading or closed mid-send

    @property
    def kind(self) -> ReplyKind:
        return classify(self.data)

    @property
    def grants(self) -> bool:
        """Whether the PAM side would grant on this reply."""
        return self.refused is None and module_grants(self.data)

    def describe(self) -> str:
        if self.refused is not None:
            return f"no connection ({self.refused})"
        how = "closed" if self.eof else "reset" if self.reset else "still open"
        if not self.data:
            if self.timed_out:
                return f"no reply within {self.elapsed_s:.2f} s ({how})"
            return f"no reply ({how} after {self.elapsed_s * 1000:.0f} ms)"
        return (f"{self.data!r} ({self.kind.value}, {how}, after "
                f"{self.elapsed_s * 1000:.0f} ms)")


class Connection:
    """One client connection to a token server."""

    def __init__(self, path: Path | str, log: WireLog, timeout: float) -> None:
        self.log = log
        self.timeout = timeout
        self.conn = log.new_conn()
        self.broken = False
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(str(path))
        except OSError as exc:
            self.sock.close()
            code = exc.errno if isinstance(exc.errno, int) else None
            name = errno.errorcode.get(code or 0, "timeout" if code is None else "?")
            log.add(self.conn, "refused", f"{path}: {name}: {exc.strerror or exc}")
            raise ConnectFailed(f"{name}: {exc.strerror or exc}", code) from exc
        log.add(self.conn, "connect", str(path))

    def __enter__(self) -> Connection:
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

    def send_chunks(self, chunks: Iterable[bytes], pause: float = 0.0) -> bool:
        """Write each chunk separately, pausing between them; stop once the server is gone."""
        for i, chunk in enumerate(chunks):
            if i and pause and self._closed_by_peer(pause):
                self.log.add(self.conn, "peer-done", f"server replied or closed after {i} "
                             "writes")
                self.broken = True
                return False
            if not self.send(chunk):
                return False
        return True

    def _closed_by_peer(self, wait: float) -> bool:
        """Wait up to ``wait``; True if the server sent or closed meanwhile."""
        ready, _, _ = select.select([self.sock], [], [], wait)
        return bool(ready)

    def shutdown_write(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_WR)
            self.log.add(self.conn, "shut-wr")
        except OSError as exc:
            self.log.add(self.conn, "shut-err", str(exc))

    def read_reply(self, timeout: float | None = None, settle: float = 0.3) -> TokenReply:
        """Read until the server closes, or ``timeout`` passes; stop ``settle`` seconds
        after a full 6-byte reply if the server keeps the connection open."""
        limit = self.timeout if timeout is None else timeout
        start = time.monotonic()
        deadline = start + limit
        data = b""
        eof = reset = timed_out = False
        while len(data) < MAX_REPLY_BYTES:
            left = deadline - time.monotonic()
            if len(data) >= REPLY_LEN:
                left = min(left, settle)
            if left <= 0:
                timed_out = len(data) < REPLY_LEN
                break
            ready, _, _ = select.select([self.sock], [], [], left)
            if not ready:
                timed_out = len(data) < REPLY_LEN
                break
            try:
                chunk = self.sock.recv(MAX_REPLY_BYTES - len(data))
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
            self.log.add(self.conn, "timeout", f"no reply/EOF after {elapsed:.2f} s")
        return TokenReply(data, eof, timed_out, reset, elapsed, sent_all=not self.broken)

    def close(self) -> None:
        if self.sock.fileno() != -1:
            self.sock.close()
            self.log.add(self.conn, "close")


def exchange(
    path: Path | str,
    log: WireLog,
    payload: bytes | list[bytes],
    *,
    timeout: float,
    pause: float = 0.0,
    shutdown: bool = False,
) -> TokenReply:
    """Connect, send payload (one write, or one write per chunk with pauses), read the
    reply.  A failed connect is returned as a reply with ``refused`` set."""
    try:
        conn = Connection(path, log, timeout)
    except ConnectFailed as exc:
        return TokenReply(b"", refused=str(exc))
    with conn:
        chunks = [payload] if isinstance(payload, bytes) else payload
        conn.send_chunks(chunks, pause)
        if shutdown and not conn.broken:
            conn.shutdown_write()
        return conn.read_reply()


def socket_state(path: Path | str) -> os.stat_result | None:
    """lstat of the socket file, or None if it is not there (or not visible)."""
    try:
        return os.lstat(path)
    except OSError:
        return None
