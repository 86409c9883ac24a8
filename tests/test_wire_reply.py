"""The reply and payload shapes both protocol clients share (core/wire.py)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from pamconform.core import wire
from pamconform.core.wirelog import WireLog
from pamconform.protocols.redirector import client as redirector
from pamconform.protocols.token import client as token


def test_both_replies_are_the_one_wire_reply() -> None:
    assert issubclass(redirector.Reply, wire.Reply)
    assert issubclass(token.TokenReply, wire.Reply)
    assert issubclass(redirector.Connection, wire.Connection)
    assert issubclass(token.Connection, wire.Connection)
    assert token.socket_state is wire.socket_state


@pytest.mark.parametrize(
    ("reply", "text"),
    [
        (redirector.Reply(b"0", True, False, False, 0.012), "b'0' (grant, closed, after 12 ms)"),
        (redirector.Reply(b"", True, False, False, 0.004), "b'' (empty, closed, after 4 ms)"),
        (redirector.Reply(b"", False, True, False, 2.0), "no reply within 2.00 s (still open)"),
        (redirector.Reply(b"1", False, True, True, 0.5), "b'1' (deny, reset, after 500 ms)"),
        (token.TokenReply(b"PASS\n\0", eof=True, elapsed_s=0.002),
         "b'PASS\\n\\x00' (PASS, closed, after 2 ms)"),
        (token.TokenReply(b"", eof=True, elapsed_s=0.01), "no reply (closed after 10 ms)"),
        (token.TokenReply(b"", timed_out=True, elapsed_s=1.0),
         "no reply within 1.00 s (still open)"),
        (token.TokenReply(b"", refused="ENOENT: gone"), "no connection (ENOENT: gone)"),
    ],
)
def test_describe_reads_the_same_for_each_protocol(reply: wire.Reply, text: str) -> None:
    assert reply.describe() == text


def test_token_reply_grants_only_on_a_connection_with_pass() -> None:
    assert token.TokenReply(b"PASS\n\0trailing").grants
    assert not token.TokenReply(b"PASS\n\0", refused="x").grants
    assert not token.TokenReply(b"PASS\n").grants


def _pair(tmp: Path) -> tuple[socket.socket, wire.Connection]:
    path = tmp / "s"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    conn = wire.Connection(path, WireLog(), 2.0)
    peer, _ = server.accept()
    server.close()
    return peer, conn


def test_send_payload_writes_chunks_then_half_closes(short_dir: Path) -> None:
    peer, conn = _pair(short_dir)
    with peer, conn:
        conn.send_payload([b"a\n", b"b\n"], shutdown=True)
        peer.settimeout(2)
        got = b""
        while chunk := peer.recv(100):
            got += chunk
    assert got == b"a\nb\n"  # EOF reached: the client shut its write side
    events = [e.event for e in conn.log.events]
    assert events == ["connect", "send", "send", "shut-wr", "close"]


def test_send_payload_skips_the_half_close_once_the_server_is_gone(short_dir: Path) -> None:
    peer, conn = _pair(short_dir)
    peer.close()
    with conn:
        for _ in range(50):  # the first writes may still land in the buffer
            if not conn.send(b"x" * 65536):
                break
        assert conn.broken
        conn.send_payload(b"late", shutdown=True)
    assert "shut-wr" not in [e.event for e in conn.log.events]


def test_socket_state(short_dir: Path) -> None:
    assert wire.socket_state(short_dir / "none") is None
    peer, conn = _pair(short_dir)
    with peer, conn:
        st = wire.socket_state(short_dir / "s")
        assert st is not None and st.st_uid == os.getuid()
