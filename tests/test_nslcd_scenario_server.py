"""The scenario server's nslcd protocol (``--protocol nslcd``), seen through the project's
own nslcd client and codec: the server writes its encoding out on its own (it must stay
standalone), so these tests are what keeps the two in step."""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pamconform.lab.scenario_control import (
    ScenarioControlError,
    ScenarioProcess,
    scenario_server_script,
)
from pamconform.protocols.nslcd import client, codec

PASSWORD = "pc-scenario-pw"


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[ScenarioProcess]:
    sock = tmp_path / "socket"
    argv = [sys.executable, str(scenario_server_script()), str(sock), "--control", "-",
            "--protocol", "nslcd", "--mode", "0600"]
    with ScenarioProcess(argv) as proc:
        yield proc


def authc(user: str = "alice") -> codec.AuthcRequest:
    return codec.AuthcRequest(codec.PamContext(user, "sshd"), PASSWORD)


def ask(proc: ScenarioProcess, request: codec.Request | bytes = b"",
        timeout: float = 3.0) -> client.Outcome:
    req = request or authc()
    return client.exchange(proc.auth_path, req, codec.Action.PAM_AUTHC, timeout=timeout)


def test_grant_names_the_requested_user_and_the_log_holds_the_request(server) -> None:
    server.set("grant")
    out = ask(server)
    assert isinstance(out, client.Answer), out
    entry = out.reply.entry
    assert isinstance(entry, codec.AuthcResult)
    assert (entry.authc, entry.username, entry.authz) == (0, b"alice", 0)
    (record,) = server.log(wait=2)
    assert bytes.fromhex(record["received_hex"]) == authc().encode()


@pytest.mark.parametrize(("request_", "expect"), [
    (codec.AuthzRequest(codec.PamContext("bob")), codec.CodeResult(0, b"")),
    (codec.SessionOpenRequest(codec.PamContext("bob")), codec.SessionResult(b"pc-session")),
    (codec.SessionCloseRequest(codec.PamContext("bob"), b"x"), codec.EmptyResult()),
    (codec.PwmodRequest(codec.PamContext("bob"), 0, "a", "b"), codec.CodeResult(0, b"")),
    (codec.ConfigGetRequest(1), codec.ConfigResult(b"")),
])
def test_grant_answers_every_action_in_its_shape(server, request_, expect) -> None:
    server.set("grant")
    out = client.exchange(server.auth_path, request_, timeout=3)
    assert isinstance(out, client.Answer), out
    assert out.reply.entries == (expect,)
    assert out.trailing == 0


def test_deny_and_empty(server) -> None:
    server.set("deny")
    out = ask(server)
    assert isinstance(out, client.Answer)
    assert isinstance(out.reply.entry, codec.AuthcResult)
    assert out.reply.entry.authc == codec.PamCode.AUTH_ERR
    server.set("empty")
    out = ask(server)
    assert isinstance(out, client.Answer) and out.reply.entries == ()


def test_request_split_across_writes_is_read_whole(server) -> None:
    server.set("grant")
    data = authc().encode()
    out = client.exchange(server.auth_path, [data[:5], data[5:30], data[30:]],
                          codec.Action.PAM_AUTHC, pause=0.2, timeout=5)
    assert isinstance(out, client.Answer), out


@pytest.mark.parametrize(("parts", "kind"), [
    ([["int", 3], ["action"], ["begin"], ["int", 0], ["user"], ["int", 0], ["str", ""],
      ["end"]], codec.WrongVersion),
    ([["version"], ["action"], ["int", 0], ["user"], ["int", 0], ["str", ""], ["end"]],
     codec.BadMarker),
    ([["version"], ["action"], ["end"], ["begin"], ["int", 0]], None),
    ([["version"], ["action"], ["begin"], ["int", 0], ["int", 0x7FFFFFFF]], codec.BadLength),
    ([["grant-cut", 12]], codec.Truncated),
    ([["raw", "00000002"]], codec.Truncated),
])
def test_compose_sends_exactly_the_tokens(server, parts, kind) -> None:
    server.set("compose", parts=parts)
    out = ask(server)
    if kind is None:  # END first: a reply with no entry, then trailing bytes
        assert isinstance(out, client.Answer) and out.reply.entries == ()
        assert out.received.endswith(codec.int32(2) + codec.int32(1) + codec.int32(0))
        return
    assert isinstance(out, client.Failure), out
    raw = b"".join(bytes.fromhex(r["sent_hex"]) for r in server.log(wait=2))
    with pytest.raises(kind):
        codec.decode_reply(raw, codec.Action.PAM_AUTHC)


def test_compose_other_user_and_big_string(server) -> None:
    server.set("compose", parts=[["version"], ["action"], ["begin"], ["int", 0],
                                 ["str", "root"], ["int", 0], ["big", 70000], ["end"]])
    out = client.exchange(server.auth_path, authc(), timeout=3, max_reply=1 << 20,
                          max_string=1 << 20)
    assert isinstance(out, client.Answer), out
    entry = out.reply.entry
    assert isinstance(entry, codec.AuthcResult)
    assert entry.username == b"root" and entry.message == b"A" * 70000


def test_compose_then_stall_holds_the_connection(server) -> None:
    server.set("compose", parts=[["grant-cut", 8]], then="stall")
    out = ask(server, timeout=1.0)
    assert isinstance(out, client.Failure) and out.kind == "timeout", out
    assert out.received == codec.header(codec.Action.PAM_AUTHC)


def test_silence_reads_the_whole_request_and_never_answers(server) -> None:
    server.set("silence")
    start = time.monotonic()
    out = ask(server, timeout=1.0)
    assert isinstance(out, client.Failure) and out.kind == "timeout"
    assert time.monotonic() - start >= 0.9
    (record,) = server.log(wait=2)
    assert bytes.fromhex(record["received_hex"]) == authc().encode()


def test_delay_then_grant(server) -> None:
    server.set("delay", seconds=0.5)
    start = time.monotonic()
    out = ask(server)
    assert isinstance(out, client.Answer) and time.monotonic() - start >= 0.45


def test_closes_and_reset(server) -> None:
    server.set("close-after-request")
    out = ask(server)
    assert isinstance(out, client.Failure) and out.kind == "closed" and not out.received
    (record,) = server.log(wait=2)
    assert bytes.fromhex(record["received_hex"]) == authc().encode()
    server.set("reset")
    out = ask(server)
    assert isinstance(out, client.Failure) and out.kind in ("reset", "closed")


@pytest.mark.parametrize("user", [None, "alice"])
def test_reply_before_request_is_sent_on_accept(server, user: str | None) -> None:
    """The early grant names the login user when told, so a module that checks the name
    still takes it: only one that looks for bytes before it writes can refuse it."""
    server.set("reply-before-request", **({} if user is None else {"user": user}))
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(3)
        s.connect(server.auth_path)
        got = s.recv(100)
    reply, _ = codec.decode_reply(got, codec.Action.PAM_AUTHC)
    assert isinstance(reply.entry, codec.AuthcResult) and reply.entry.authc == 0
    assert reply.entry.username == (user or "").encode()


def test_a_negative_length_ends_the_read(server) -> None:
    server.set("close-after-request")
    bad = codec.header(codec.Action.PAM_AUTHC) + codec.int32(-1)
    out = client.exchange(server.auth_path, bad, codec.Action.PAM_AUTHC, timeout=3)
    assert isinstance(out, client.Failure) and out.kind == "closed"
    (record,) = server.log(wait=2)
    assert record["closed_by"] == "server"


@pytest.mark.parametrize("args", [
    {"parts": []}, {"parts": [["nope"]]}, {"parts": [["int", "x"]]},
    {"parts": [["int", 2**31]]}, {"parts": [["big", 2**30]]}, {"parts": [["raw", "zz"]]},
    {"parts": [["grant"]], "then": "explode"}, {"parts": [["int", True]]},
])
def test_bad_compose_arguments_are_refused(server, args) -> None:
    with pytest.raises(ScenarioControlError):
        server.set("compose", **args)


def test_redirector_scenarios_are_not_nslcd_ones(server) -> None:
    with pytest.raises(ScenarioControlError, match="unknown scenario"):
        server.set("malformed", reply="30")
