"""Behaviours played side by side (protocols/nslcd/side_by_side.py), against a local
scenario server, each login from a process of its own (as pamdrive and sshd are): each
login meets its own behaviour and the waits overlap; a login that connects twice, late,
or not at all, or a connection left open from before, throws the batch away; and
module_steps.play_beside then plays each behaviour alone."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from pamconform.lab.scenario_control import ScenarioProcess, scenario_server_script
from pamconform.protocols.nslcd import codec
from pamconform.protocols.nslcd.module_steps import BESIDE, SSH_SILENCE, play_beside
from pamconform.protocols.nslcd.side_by_side import play_alone, play_side_by_side

ROOT = Path(__file__).resolve().parents[1]
WAIT_S = 1.5
BEHAVIOURS: list[tuple[str, str, dict[str, Any], str]] = [
    ("silence", "silence", {}, "reads and never answers"),
    ("stall-mid-reply", "compose", {"parts": [["grant-cut", 8]], "then": "stall"},
     "sends the header, then stalls"),
    ("deny", "deny", {}, "answers AUTH_ERR"),
    ("slow-grant", "delay", {"seconds": 0.5}, "grants after 0.5 s"),
]
HEADER = codec.header(codec.Action.PAM_AUTHC).hex()
EXPECTED = {"silence": "timeout:", "deny": "denied", "slow-grant": "granted",
            "stall-mid-reply": f"timeout:{HEADER}"}

#: A login in a child process: connects ``times`` times, ``pause`` s apart.
_LOGIN = """
import sys, time
from pamconform.protocols.nslcd import client, codec
path, times, pause, wait = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
out = []
for i in range(times):
    if i:
        time.sleep(pause)
    req = codec.AuthcRequest(codec.PamContext("alice", "sshd"), "pc-side-pw")
    got = client.exchange(path, req, codec.Action.PAM_AUTHC, timeout=wait)
    if isinstance(got, client.Answer):
        out.append("granted" if got.reply.entry.authc == 0 else "denied")
    else:
        out.append(got.kind + ":" + got.received.hex())
print("|".join(out))
"""


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[ScenarioProcess]:
    argv = [sys.executable, str(scenario_server_script()), str(tmp_path / "socket"),
            "--control", "-", "--protocol", "nslcd", "--mode", "0600"]
    with ScenarioProcess(argv) as proc:
        yield proc


def login(server: ScenarioProcess, times: int = 1, pause: float = 0.0,
          delay: float = 0.0) -> str:
    if delay:
        time.sleep(delay)
    done = subprocess.run([sys.executable, "-c", _LOGIN, server.auth_path, str(times),
                           str(pause), str(WAIT_S)], capture_output=True, text=True, timeout=30,
                          cwd=ROOT, check=True)
    return done.stdout.strip()


def logins(server: ScenarioProcess, **special: Callable[[], str]) -> Callable[[str], str]:
    return lambda name: special[name]() if name in special else login(server)


def test_each_login_meets_its_own_behaviour_and_the_waits_overlap(server) -> None:
    spans: dict[str, tuple[float, float]] = {}

    def timed(name: str) -> str:
        start = time.monotonic()
        out = login(server)
        spans[name] = (start, time.monotonic())
        return out

    played = play_side_by_side(server, BEHAVIOURS, timed, budget=10)
    assert played is not None
    assert {name: p.attempt for name, p in played.items()} == EXPECTED
    assert all(p.how.startswith("side by side") and p.error is None for p in played.values())
    # the two waits of WAIT_S overlap (one at a time, the second starts after the first)
    (a0, a1), (b0, b1) = spans["silence"], spans["stall-mid-reply"]
    assert b0 < a1 and a0 < b1, spans
    assert played["stall-mid-reply"].sent_hex == [HEADER]
    assert played["silence"].sent_hex == [""]


def test_a_retry_landing_in_a_later_window_does_not_count(server) -> None:
    # deny's login connects again 0.4 s later, while the silent behaviour is armed
    special = {"deny": lambda: login(server, times=2, pause=0.4)}
    behaviours = [BEHAVIOURS[2], ("grant", "grant", {}, ""), BEHAVIOURS[0]]
    special["silence"] = lambda: login(server, delay=0.3)
    assert play_side_by_side(server, behaviours, logins(server, **special), budget=10) is None


def test_a_retry_after_the_last_window_does_not_count(server) -> None:
    special = {"slow-grant": lambda: login(server, times=2, pause=0.5)}
    assert play_side_by_side(server, BEHAVIOURS[2:], logins(server, **special),
                             budget=10) is None


def test_a_login_that_never_connects_ends_the_batch(server) -> None:
    special = {"deny": lambda: "no connection"}
    assert play_side_by_side(server, BEHAVIOURS[2:], logins(server, **special),
                             budget=10) is None


def test_a_connection_open_from_before_is_nobody_s(server) -> None:
    server.set("silence")
    earlier = threading.Thread(target=login, args=(server,))
    earlier.start()
    deadline = time.monotonic() + 10
    while server.ping().get("open", 0) < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    played = play_side_by_side(server, BEHAVIOURS[2:], logins(server), budget=10)
    earlier.join(10)
    assert played is not None
    assert {n: p.attempt for n, p in played.items()} == {"deny": "denied",
                                                           "slow-grant": "granted"}


def test_play_alone_keeps_only_its_own_connections(server) -> None:
    played = play_alone(server, BEHAVIOURS[2], lambda _name: login(server, times=2))
    assert played.attempt == "denied|denied" and len(played.sent_hex) == 2
    assert played.how.startswith("alone")


class _Target:
    """What play_beside uses of a LabModuleTarget, on a local scenario server."""

    hang_bound = login_timeout = 2.0

    def __init__(self, proc: ScenarioProcess, attempt: Callable[[], str]) -> None:
        self.proc, self._attempt = proc, attempt
        self.beside: dict[str, Any] = {}

    def start_sshd(self) -> None:
        pass

    def twin(self) -> _Target:
        return self

    def twin_evidence(self) -> dict[str, str]:
        return {"container": "local"}

    def scenario(self, name: str, **args: Any) -> ScenarioProcess:
        self.proc.set(name, **args)
        self.proc.log()
        return self.proc

    def attempt(self) -> str:
        return self._attempt()

    def ssh(self, _user: str, _password: str) -> str:
        return "ssh:" + self._attempt()


def test_play_beside_runs_the_batch_once_and_else_plays_each_alone(server) -> None:
    clean = _Target(server, lambda: login(server))
    waits: list[None] = []
    again: list[None] = []
    ctx: Any = SimpleNamespace(target=clean, extra={}, only_waits=lambda: waits.append(None),
                               works_again=lambda: again.append(None))
    first = play_beside(ctx, BESIDE[0][0])
    assert first.how.startswith("side by side") and first.attempt == "timeout:"
    assert set(clean.beside) == {b[0] for b in BESIDE}
    assert len(waits) == 1 and again == []  # armed: from then on it only waited
    assert play_beside(ctx, SSH_SILENCE[0]).attempt == "ssh:timeout:"

    unclean = _Target(server, lambda: login(server, times=2, pause=0.3))
    ctx = SimpleNamespace(target=unclean, extra={}, only_waits=lambda: waits.append(None),
                          works_again=lambda: again.append(None))
    played = play_beside(ctx, "silence")
    assert played.how.startswith("alone"), played.how
    assert played.attempt == "timeout:|timeout:"
    assert unclean.beside == dict.fromkeys(b[0] for b in BESIDE)  # each plays alone later
    assert len(waits) == 2  # it armed too: the second connections came after
    assert len(again) == 1  # so it took the gate again before its own login alone


def test_a_login_error_is_raised_in_its_own_case_only(server) -> None:
    def attempt() -> str:
        return login(server)

    class Broken(_Target):
        def ssh(self, _user: str, _password: str) -> str:
            login(server)
            raise RuntimeError("the ssh driver broke")

    target = Broken(server, attempt)
    ctx: Any = SimpleNamespace(target=target, extra={}, only_waits=lambda: None)
    assert play_beside(ctx, "silence").attempt == "timeout:"
    with pytest.raises(RuntimeError, match="ssh driver"):
        play_beside(ctx, SSH_SILENCE[0])


def test_play_beside_plays_in_the_twin_and_never_on_the_targets_own_socket(server) -> None:
    twin = _Target(server, lambda: login(server))

    class Main:
        """The target: its own scenario server and logins must not be touched."""

        def twin(self) -> _Target:
            return twin

        def twin_evidence(self) -> dict[str, str]:
            return {"container": "twin-box"}

        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"played on the target's own container: {name}")

    ctx: Any = SimpleNamespace(target=Main(), extra={}, only_waits=lambda: None)
    played = play_beside(ctx, "silence")
    assert played.how.startswith("side by side") and played.attempt == "timeout:"
    assert set(twin.beside) == {b[0] for b in BESIDE}
    assert ctx.extra["twin"] == {"container": "twin-box"}
