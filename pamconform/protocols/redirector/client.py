"""A logged redirector client: every connect, write and read lands in the wire log."""

from __future__ import annotations

from pathlib import Path

from pamconform.core import wire
from pamconform.core.wire import ConnectFailed
from pamconform.core.wirelog import WireLog
from pamconform.protocols.redirector.reply import ReplyKind, classify

__all__ = ["ConnectFailed", "Connection", "Reply", "exchange", "request"]

#: Never read more than this from a server, whatever it sends.
MAX_REPLY_BYTES = 65536


def request(user: bytes, password: bytes) -> bytes:
    """The exact bytes the module sends.

    >>> request(b"alice", b"s3cret")
    b'alice\\ns3cret\\n'
    """
    return user + b"\n" + password + b"\n"


class Reply(wire.Reply):
    """What came back on one connection after the request was sent."""

    @property
    def kind(self) -> ReplyKind:
        return classify(self.data)

    def kind_name(self) -> str:
        return self.kind.value


class Connection(wire.Connection):
    """One logged client connection to a redirector server."""

    def read_reply(self, timeout: float | None = None, settle: float | None = None) -> Reply:
        """Read until the server closes, or until ``timeout`` passes with no EOF.

        With ``settle``, stop waiting for EOF once a complete-looking reply (digits,
        maybe a newline) has sat for that long with nothing more arriving.
        """
        got = self.read(self.timeout if timeout is None else timeout, limit=MAX_REPLY_BYTES,
                        settle=settle, complete=_looks_complete)
        if got.stopped:
            self.log.add(self.conn, "timeout", f"no EOF after {got.elapsed_s:.2f} s")
        return Reply(got.data, got.eof, got.stopped, got.reset, got.elapsed_s)


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
        conn.send_payload(payload, pause, shutdown=shutdown)
        return conn.read_reply(settle=settle)

