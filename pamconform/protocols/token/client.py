"""A logged transient-token client: every connect, write and read lands in the wire log."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from pamconform.core import wire
from pamconform.core.wire import ConnectFailed, socket_state
from pamconform.core.wirelog import WireLog

__all__ = ["ConnectFailed", "Connection", "TokenReply", "classify", "exchange",
           "module_grants", "socket_state"]

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


@dataclass
class TokenReply(wire.Reply):
    """What came back on one connection (or why there was no connection)."""

    refused: str | None = None  # no connection at all: why
    sent_all: bool = True  # False if the server stopped reading or closed mid-send

    @property
    def kind(self) -> ReplyKind:
        return classify(self.data)

    def kind_name(self) -> str:
        return self.kind.value

    @property
    def grants(self) -> bool:
        """Whether the PAM side would grant on this reply."""
        return self.refused is None and module_grants(self.data)

    def describe(self) -> str:
        if self.refused is not None:
            return f"no connection ({self.refused})"
        if not self.data and not self.timed_out:
            return f"no reply ({self.ending()} after {self.elapsed_s * 1000:.0f} ms)"
        return super().describe()


class Connection(wire.Connection):
    """One logged client connection to a token server."""

    def send_chunks(self, chunks: Iterable[bytes], pause: float = 0.0, *,
                    stop_when_answered: bool = True) -> bool:
        """Write each chunk separately, pausing between them; stop once the server is gone."""
        return super().send_chunks(chunks, pause, stop_when_answered=stop_when_answered)

    def read_reply(self, timeout: float | None = None, settle: float = 0.3) -> TokenReply:
        """Read until the server closes, or ``timeout`` passes; stop ``settle`` seconds
        after a full 6-byte reply if the server keeps the connection open."""
        got = self.read(self.timeout if timeout is None else timeout, limit=MAX_REPLY_BYTES,
                        settle=settle, complete=lambda data: len(data) >= REPLY_LEN)
        timed_out = got.stopped and len(got.data) < REPLY_LEN
        if timed_out:
            self.log.add(self.conn, "timeout", f"no reply/EOF after {got.elapsed_s:.2f} s")
        return TokenReply(got.data, got.eof, timed_out, got.reset, got.elapsed_s,
                          sent_all=not self.broken)


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
        conn.send_payload(payload, pause, shutdown=shutdown)
        return conn.read_reply()

