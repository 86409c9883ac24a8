"""The logged client: framing of what it sends, reading replies, timeouts, logging."""

import socket
import time

import pytest

from pamconform.core.wirelog import WireLog, show_bytes
from pamconform.protocols.redirector.client import ConnectFailed, Connection, exchange, request


def _echo_len(conn: socket.socket) -> None:
    data = b""
    while data.count(b"\n") < 2:
        chunk = conn.recv(100)
        if not chunk:
            break
        data += chunk
    conn.sendall(str(len(data)).encode())


def test_request_bytes() -> None:
    assert request(b"bob", b"") == b"bob\n\n"


def test_chunks_arrive_whole_and_are_logged(scripted) -> None:
    server = scripted(_echo_len)
    log = WireLog()
    reply = exchange(server.path, log, [b"al", b"ice\npw", b"\n"], timeout=2, pause=0.01)
    assert reply.data == b"9" and reply.eof
    sends = [e for e in log.events if e.event == "send"]
    assert [e.data for e in sends] == ["al", "ice\\npw", "\\n"]
    assert sends[1].t_ms - sends[0].t_ms >= 9


def test_silent_server_times_out_quickly(scripted) -> None:
    server = scripted(lambda conn: time.sleep(3))
    start = time.monotonic()
    reply = exchange(server.path, WireLog(), b"a\nb\n", timeout=0.3)
    assert reply.timed_out and reply.data == b"" and not reply.eof
    assert time.monotonic() - start < 2


def test_settle_stops_waiting_after_a_complete_reply(scripted) -> None:
    def reply_and_hold(conn: socket.socket) -> None:
        conn.recv(100)
        conn.sendall(b"0")
        time.sleep(3)

    server = scripted(reply_and_hold)
    start = time.monotonic()
    reply = exchange(server.path, WireLog(), b"a\nb\n", timeout=5, settle=0.2)
    assert reply.data == b"0" and not reply.eof
    assert time.monotonic() - start < 2


def test_refused_connection_is_logged(short_dir) -> None:
    log = WireLog()
    with pytest.raises(ConnectFailed):
        Connection(short_dir / "none", log, 1)
    assert log.events[0].event == "refused"


def test_show_bytes_truncates() -> None:
    assert show_bytes(b"\x00\xff\n") == "\\x00\\xff\\n"
    assert show_bytes(b"a" * 300).endswith("(300 bytes in all)")
