"""The nslcd codec and client: round trips, truncation, hostile lengths, wrong version."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pamconform.protocols.nslcd import codec
from pamconform.protocols.nslcd.client import Answer, Failure, exchange
from pamconform.protocols.nslcd.codec import (
    Action,
    AuthcRequest,
    AuthcResult,
    AuthzRequest,
    CodeResult,
    ConfigGetRequest,
    ConfigResult,
    EmptyResult,
    PamCode,
    PamContext,
    PwmodRequest,
    SessionCloseRequest,
    SessionOpenRequest,
    SessionResult,
)

CTX = PamContext("alice", "sshd", "ruser", "rhost", "pts/0")

REQUESTS = [
    AuthcRequest(CTX, "s3cret"),
    AuthcRequest(PamContext(""), ""),
    AuthzRequest(CTX),
    SessionOpenRequest(CTX),
    SessionCloseRequest(CTX, "sess-1"),
    PwmodRequest(CTX, True, "old", "new"),
    PwmodRequest(CTX, False, "", "new"),
    ConfigGetRequest(),
]

REPLIES: list[tuple[int, list[codec.Entry]]] = [
    (Action.PAM_AUTHC, [AuthcResult(0, b"alice", 0, b"")]),
    (Action.PAM_AUTHC, [AuthcResult(7, b"alice", 0, b"Invalid credentials")]),
    (Action.PAM_AUTHC, []),
    (Action.PAM_AUTHZ, [CodeResult(13, b"account expired")]),
    (Action.PAM_PWMOD, [CodeResult(0, b"")]),
    (Action.PAM_SESS_O, [SessionResult(b"ABCDEF")]),
    (Action.PAM_SESS_C, [EmptyResult()]),
    (Action.CONFIG_GET, [ConfigResult(b"")]),
]


def _b(v: codec.Text) -> bytes:
    return v.encode() if isinstance(v, str) else v


def _same_request(a: codec.Request, b: codec.Request) -> bool:
    """Equal up to str/bytes (the decoder yields bytes)."""
    def norm(x: object) -> object:
        if isinstance(x, str | bytes):
            return _b(x)
        if isinstance(x, PamContext):
            return tuple(_b(getattr(x, f)) for f in ("username", "service", "ruser", "rhost",
                                                     "tty"))
        return x
    return type(a) is type(b) and all(
        norm(getattr(a, f)) == norm(getattr(b, f)) for f in a.__dataclass_fields__
    )


# -- encoding: the exact bytes ---------------------------------------------------------------
def test_authc_request_bytes_are_the_documented_layout() -> None:
    raw = AuthcRequest(PamContext("al", "s", "", "", ""), "pw").encode()
    assert raw == (
        struct.pack(">ii", 2, 0x000D0001)
        + struct.pack(">i", 2) + b"al" + struct.pack(">i", 1) + b"s"
        + struct.pack(">i", 0) * 3
        + struct.pack(">i", 2) + b"pw"
    )


def test_pwmod_carries_asroot_as_int32() -> None:
    raw = PwmodRequest(PamContext("", "", "", "", ""), True, "o", "n").encode()
    assert raw[8 + 5 * 4:8 + 5 * 4 + 4] == struct.pack(">i", 1)


def test_password_not_in_repr() -> None:
    assert "s3cret" not in repr(AuthcRequest(CTX, "s3cret"))
    assert "new" not in repr(PwmodRequest(CTX, False, "old", "new")).replace("new=", "")


# -- round trips -----------------------------------------------------------------------------
@pytest.mark.parametrize("req", REQUESTS, ids=lambda r: type(r).__name__)
def test_request_round_trip(req: codec.Request) -> None:
    raw = req.encode()
    back, used = codec.decode_request(raw)
    assert used == len(raw)
    assert _same_request(back, req)


@pytest.mark.parametrize(("action", "entries"), REPLIES, ids=lambda x: str(x)[:30])
def test_reply_round_trip(action: int, entries: list[codec.Entry]) -> None:
    raw = codec.encode_reply(action, entries)
    reply, used = codec.decode_reply(raw + b"junk", action)
    assert used == len(raw)
    assert reply.action == action
    assert list(reply.entries) == entries


def test_unknown_user_is_an_empty_reply() -> None:
    reply, _ = codec.decode_reply(codec.encode_reply(Action.PAM_AUTHC, []), Action.PAM_AUTHC)
    assert reply.entry is None


# -- truncation: every prefix is Truncated, never another answer -----------------------------
@pytest.mark.parametrize(("action", "entries"), REPLIES, ids=lambda x: str(x)[:30])
def test_every_prefix_of_a_reply_is_truncated(action: int, entries: list[codec.Entry]) -> None:
    raw = codec.encode_reply(action, entries)
    for n in range(len(raw)):
        with pytest.raises(codec.Truncated):
            codec.decode_reply(raw[:n], action)


def test_every_prefix_of_a_request_is_truncated() -> None:
    raw = AuthcRequest(CTX, "pw").encode()
    for n in range(len(raw)):
        with pytest.raises(codec.Truncated):
            codec.decode_request(raw[:n])


# -- hostile input ---------------------------------------------------------------------------
def _authc_reply_with_name_length(length: int) -> bytes:
    return codec.header(Action.PAM_AUTHC) + struct.pack(">iii", 1, 0, length)


@pytest.mark.parametrize("length", [2**31 - 1, 4097, 10**9])
def test_huge_length_is_refused_without_waiting_for_the_bytes(length: int) -> None:
    with pytest.raises(codec.BadLength):
        codec.decode_reply(_authc_reply_with_name_length(length), Action.PAM_AUTHC)


def test_negative_length_is_refused() -> None:
    with pytest.raises(codec.BadLength):
        codec.decode_reply(_authc_reply_with_name_length(-1), Action.PAM_AUTHC)


def test_bound_is_the_callers() -> None:
    raw = codec.encode_reply(Action.PAM_AUTHZ, [CodeResult(0, b"x" * 100)])
    codec.decode_reply(raw, Action.PAM_AUTHZ, max_string=100)
    with pytest.raises(codec.BadLength):
        codec.decode_reply(raw, Action.PAM_AUTHZ, max_string=99)


@pytest.mark.parametrize("version", [0, 1, 3, -1, 0x02000000])
def test_wrong_version_is_refused(version: int) -> None:
    raw = codec.encode_reply(Action.PAM_AUTHC, [AuthcResult(0, b"a", 0, b"")], version)
    with pytest.raises(codec.WrongVersion):
        codec.decode_reply(raw, Action.PAM_AUTHC)


def test_reply_for_another_action_is_refused() -> None:
    raw = codec.encode_reply(Action.PAM_AUTHZ, [CodeResult(0, b"")])
    with pytest.raises(codec.WrongAction):
        codec.decode_reply(raw, Action.PAM_AUTHC)


@pytest.mark.parametrize("marker", [0, 3, -1, 0x01000000])
def test_bad_marker_is_refused(marker: int) -> None:
    raw = codec.header(Action.PAM_AUTHZ) + struct.pack(">i", marker)
    with pytest.raises(codec.BadMarker):
        codec.decode_reply(raw, Action.PAM_AUTHZ)


def test_endless_entries_are_bounded() -> None:
    entries: list[codec.Entry] = [CodeResult(0, b"")] * 5
    raw = codec.encode_reply(Action.PAM_AUTHZ, entries)
    codec.decode_reply(raw, Action.PAM_AUTHZ, max_results=5)
    with pytest.raises(codec.TooManyResults):
        codec.decode_reply(raw, Action.PAM_AUTHZ, max_results=4)


def test_unknown_action_request_is_refused() -> None:
    with pytest.raises(codec.WrongAction):
        codec.decode_request(codec.header(0x000D0009) + b"\0" * 40)


def test_code_names() -> None:
    assert codec.code_name(7) == "AUTH_ERR"
    assert codec.code_name(99) == "99"
    assert PamCode.SUCCESS == 0


# -- the client against scripted daemons -----------------------------------------------------
Handler = Callable[[socket.socket], None]


def _read_request(conn: socket.socket) -> codec.Request:
    data = b""
    while True:
        try:
            return codec.decode_request(data)[0]
        except codec.Truncated:
            chunk = conn.recv(4096)
            if not chunk:
                raise
            data += chunk


def _serve(reply: bytes) -> Handler:
    def handler(conn: socket.socket) -> None:
        _read_request(conn)
        conn.sendall(reply)
    return handler


def test_client_grant_and_request_seen(scripted, short_dir: Path) -> None:
    seen: list[codec.Request] = []

    def handler(conn: socket.socket) -> None:
        seen.append(_read_request(conn))
        conn.sendall(codec.encode_reply(Action.PAM_AUTHC, [AuthcResult(0, b"alice", 0, b"")]))

    srv = scripted(handler)
    out = exchange(str(srv.path), AuthcRequest(CTX, "pw"), timeout=3)
    assert isinstance(out, Answer), out
    assert isinstance(out.reply.entry, AuthcResult) and out.reply.entry.granted
    assert out.trailing == 0
    assert isinstance(seen[0], AuthcRequest) and seen[0].password == b"pw"


def test_client_split_writes_arrive_whole(scripted) -> None:
    raw = AuthzRequest(CTX).encode()
    srv = scripted(_serve(codec.encode_reply(Action.PAM_AUTHZ, [CodeResult(6, b"no")])))
    out = exchange(str(srv.path), [raw[:3], raw[3:11], raw[11:]], Action.PAM_AUTHZ,
                   timeout=3, pause=0.05)
    assert isinstance(out, Answer) and out.reply.entry == CodeResult(6, b"no")


def test_client_missing_socket_is_a_connect_failure(short_dir: Path) -> None:
    out = exchange(str(short_dir / "absent"), AuthzRequest(CTX), timeout=1)
    assert isinstance(out, Failure) and out.kind == Failure.CONNECT


def test_client_stalling_daemon_times_out_in_read(scripted) -> None:
    def stall(conn: socket.socket) -> None:
        _read_request(conn)
        conn.sendall(codec.header(Action.PAM_AUTHC))
        time.sleep(2)

    srv = scripted(stall)
    start = time.monotonic()
    out = exchange(str(srv.path), AuthcRequest(CTX, "pw"), timeout=0.5)
    assert time.monotonic() - start < 1.5
    assert isinstance(out, Failure) and (out.kind, out.phase) == (Failure.TIMEOUT, "read")
    assert out.received == codec.header(Action.PAM_AUTHC)


def test_client_header_then_eof_is_closed(scripted) -> None:
    srv = scripted(_serve(codec.header(Action.PAM_AUTHC)))
    out = exchange(str(srv.path), AuthcRequest(CTX, "pw"), timeout=2)
    assert isinstance(out, Failure) and out.kind == Failure.CLOSED


def test_client_huge_length_is_malformed_at_once(scripted) -> None:
    srv = scripted(_serve(_authc_reply_with_name_length(2**31 - 1)))
    out = exchange(str(srv.path), AuthcRequest(CTX, "pw"), timeout=3)
    assert isinstance(out, Failure) and out.kind == Failure.MALFORMED
    assert out.elapsed_s < 2


def test_client_wrong_version_is_malformed(scripted) -> None:
    srv = scripted(_serve(codec.encode_reply(Action.PAM_AUTHC,
                                             [AuthcResult(0, b"a", 0, b"")], version=1)))
    out = exchange(str(srv.path), AuthcRequest(CTX, "pw"), timeout=2)
    assert isinstance(out, Failure) and out.kind == Failure.MALFORMED
    assert "version" in out.detail


def test_client_endless_stream_is_too_large(scripted) -> None:
    def flood(conn: socket.socket) -> None:
        _read_request(conn)
        conn.sendall(codec.header(Action.PAM_AUTHZ))
        begin = struct.pack(">iii", 1, 0, 0)
        try:
            for _ in range(10000):
                conn.sendall(begin)
        except OSError:
            pass

    srv = scripted(flood)
    out = exchange(str(srv.path), AuthzRequest(CTX), timeout=3, max_reply=1024)
    assert isinstance(out, Failure) and out.kind in (Failure.MALFORMED, Failure.TOO_LARGE)


def test_client_reply_cut_by_size_bound(scripted) -> None:
    def big(conn: socket.socket) -> None:
        _read_request(conn)
        conn.sendall(codec.header(Action.PAM_AUTHZ) + struct.pack(">iii", 1, 0, 4000)
                     + b"m" * 4000)
        time.sleep(1)

    srv = scripted(big)
    out = exchange(str(srv.path), AuthzRequest(CTX), timeout=3, max_reply=1024)
    assert isinstance(out, Failure) and out.kind == Failure.TOO_LARGE


def test_raw_request_needs_expect(short_dir: Path) -> None:
    with pytest.raises(ValueError):
        exchange(str(short_dir / "x"), b"\0\0\0\2", timeout=1)
