"""Behaviours played side by side (protocols/nslcd/side_by_side.py), against a local
scenario server: each attempt meets its own behaviour, the waits overlap, and a client
that connects outside its own behaviour sends the batch back to one at a time."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pamconform.lab.scenario_control import ScenarioProcess, scenario_server_script
from pamconform.protocols.nslcd import client, codec
from pamconform.protocols.nslcd.side_by_side import play_alone, play_side_by_side

WAIT_S = 1.5
BEHAVIOURS: list[tuple[str, str, dict[str, Any], str]] = [
    ("silence", "silence", {}, "reads and never answers"),
    ("stall-mid-reply", "compose", {"parts": [["grant-cut", 8]], "then": "stall"},
     "sends the header, then stalls"),
    ("deny", "deny", {}, "answers AUTH_ERR"),
    ("slow-grant", "delay", {"seconds": 0.5}, "grants after 0.5 s"),
]


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[ScenarioProcess]:
    argv = [sys.executable, str(scenario_server_script()), str(tmp_path / "socket"),
            "--control", "-", "--protocol", "nslcd", "--mode", "0600"]
    with ScenarioProcess(argv) as proc:
        yield proc


def _ask(server: ScenarioProcess) -> str:
    request = codec.AuthcRequest(codec.PamContext("alice", "sshd"), "pc-side-pw")
    out = client.exchange(server.auth_path, request, codec.Action.PAM_AUTHC, timeout=WAIT_S)
    if isinstance(out, client.Answer):
        entry = out.reply.entry
        assert isinstance(entry, codec.AuthcResult)
        return "granted" if entry.authc == 0 else "denied"
    return f"{out.kind}:{out.received.hex()}"


EXPECTED = {"silence": "timeout:", "deny": "denied", "slow-grant": "granted",
            "stall-mid-reply": f"timeout:{codec.header(codec.Action.PAM_AUTHC).hex()}"}


def test_each_attempt_meets_its_own_behaviour_and_the_waits_overlap(server) -> None:
    start = time.monotonic()
    played = play_side_by_side(server, BEHAVIOURS, lambda _name: _ask(server), budget=5)
    assert played is not None
    took = time.monotonic() - start
    assert {name: p.attempt for name, p in played.items()} == EXPECTED
    assert all(p.how.startswith("side by side") for p in played.values())
    # two waits of 1.5 s one after the other would take 3 s
    assert took < 2 * WAIT_S, took
    assert played["stall-mid-reply"].sent_hex == [codec.header(codec.Action.PAM_AUTHC).hex()]
    assert played["silence"].sent_hex == [""]


def test_a_second_connection_throws_the_batch_away_and_each_plays_alone(server) -> None:
    def twice(_name: str) -> str:
        first = _ask(server)
        time.sleep(0.5)  # by now the next behaviour is armed, and this one is not its own
        return first + "|" + _ask(server)

    assert play_side_by_side(server, BEHAVIOURS[2:], twice, budget=5) is None
    alone = {b[0]: play_alone(server, b, twice) for b in BEHAVIOURS[2:]}
    assert alone["deny"].attempt == "denied|denied"
    assert alone["slow-grant"].attempt == "granted|granted"
    assert all(p.how.startswith("alone") and len(p.sent_hex) == 2 for p in alone.values())


def test_a_client_that_never_connects_is_waited_out_before_the_next(server) -> None:
    calls: list[str] = []

    def maybe(_name: str) -> str:
        calls.append("x")
        if len(calls) == 1:
            time.sleep(0.3)
            return "no connection"
        return _ask(server)

    played = play_side_by_side(server, BEHAVIOURS[2:], maybe, budget=5)
    assert played is not None
    assert played["deny"].attempt == "no connection"
    assert played["deny"].sent_hex == []
    assert played["slow-grant"].attempt == "granted"


class _Target:
    """What play_beside uses of a LabModuleTarget, on a local scenario server."""

    hang_bound = login_timeout = 2.0

    def __init__(self, proc: ScenarioProcess, login: Any) -> None:
        self.proc, self.login, self.beside = proc, login, {}  # type: dict[str, Any]

    def start_sshd(self) -> None:
        pass

    def scenario(self, name: str, **args: Any) -> ScenarioProcess:
        self.proc.set(name, **args)
        self.proc.log()
        return self.proc

    def attempt(self) -> str:
        return str(self.login())

    def ssh(self, _user: str, _password: str) -> str:
        return "ssh:" + str(self.login())


def test_play_beside_runs_the_batch_once_and_plays_alone_when_it_was_not_clean(server) -> None:
    from types import SimpleNamespace

    from pamconform.protocols.nslcd.module_steps import BESIDE, SSH_SILENCE, play_beside

    clean = _Target(server, lambda: _ask(server))
    ctx = SimpleNamespace(target=clean)
    first = play_beside(ctx, BESIDE[0][0])  # type: ignore[arg-type]
    assert first.how.startswith("side by side") and first.attempt == "timeout:"
    assert set(clean.beside) == {b[0] for b in BESIDE}
    assert play_beside(ctx, SSH_SILENCE[0]).attempt == "ssh:timeout:"  # type: ignore[arg-type]

    def twice() -> str:
        first = _ask(server)
        time.sleep(0.5)
        return first + "|" + _ask(server)

    unclean = _Target(server, twice)
    ctx = SimpleNamespace(target=unclean)
    played = play_beside(ctx, "silence")  # type: ignore[arg-type]
    assert played.how.startswith("alone"), played.how
    assert played.attempt == "timeout:|timeout:"
    assert unclean.beside == dict.fromkeys(b[0] for b in BESIDE)  # each plays alone later
