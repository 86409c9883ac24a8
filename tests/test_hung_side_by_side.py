"""R-M2 end to end: the ssh and su hang logins run side by side, once per target, and
each case grades and records only its own login path."""

from __future__ import annotations

import threading
import time
from typing import Any, cast

import pytest

from pamconform.core.context import CaseContext
from pamconform.core.errors import HarnessError
from pamconform.drivers.login import LoginOutcome, LoginResult
from pamconform.drivers.login_checks import hang_watch
from pamconform.protocols.redirector.e2e_steps import hung_login

#: how long each path takes to deny with no server, and with the server hung
DENY_S = {"ssh": 0.4, "su": 2.1}
HUNG_S = {"ssh": 3.4, "su": 5.2}


class FakeTarget:
    """Just what hung_login uses of a ModuleTarget; logins overlap-counted."""

    login_timeout = 20.0
    hang_bound = 5.0

    def __init__(self, fail: str | None = None, fail_state: str | None = None) -> None:
        self.denial_s: dict[str, float] = {}
        self.hung: dict[str, Any] = {}
        self.server_state = "reference"
        self.states: list[str] = []
        self.timeouts: dict[tuple[str, str], float | None] = {}
        self.fail = fail
        self.fail_state = fail_state
        self._lock = threading.Lock()
        self._active = 0
        #: the most logins at once, per server state
        self.peak: dict[str, int] = {}

    def server(self, state: str) -> None:
        self.states.append(state)
        if state == self.fail_state:
            raise HarnessError(f"server {state} did not start")
        self.server_state = state

    def _login(self, via: str, timeout: float | None) -> LoginResult:
        state = self.server_state
        self.timeouts[via, state] = timeout
        with self._lock:
            self._active += 1
            self.peak[state] = max(self.peak.get(state, 0), self._active)
        time.sleep(0.3)
        with self._lock:
            self._active -= 1
        if via == self.fail and state != "down":
            raise HarnessError(f"{via}: docker exec failed")
        took = (DENY_S if state == "down" else HUNG_S)[via]
        return LoginResult(LoginOutcome.DENIED, took, f"{via} denied ({state})")

    def ssh(self, user: str, password: str, method: str = "keyboard-interactive",
            timeout: float | None = None) -> LoginResult:
        return self._login("ssh", timeout)

    def su(self, as_user: str, target_user: str, password: str,
           timeout: float | None = None) -> LoginResult:
        return self._login("su", timeout)


def test_both_paths_are_measured_once_side_by_side_and_each_case_keeps_its_own() -> None:
    t = FakeTarget()
    ssh_ctx, su_ctx = CaseContext(t), CaseContext(t)
    ssh_path, ssh_hung = hung_login(ssh_ctx, "ssh")
    su_path, su_hung = hung_login(su_ctx, "su")
    assert t.states == ["down", "scenario:silence", "reference"]  # once, not per case
    assert t.peak == {"down": 2, "scenario:silence": 2}  # each phase's logins overlapped
    assert (ssh_path, su_path) == (DENY_S["ssh"], DENY_S["su"])
    assert ssh_hung.latency_s == HUNG_S["ssh"]
    assert su_hung.latency_s == HUNG_S["su"]
    for via in ("ssh", "su"):  # each hung login watched past its own path's bound
        assert t.timeouts[via, "scenario:silence"] == hang_watch(t, DENY_S[via])  # type: ignore[arg-type]
    for ctx, via in ((ssh_ctx, "ssh"), (su_ctx, "su")):
        logins = ctx.extra["logins"]
        assert [(r["via"], r["server"]) for r in logins] == [
            (via, "down"), (via, "scenario:silence")]
        assert all("side by side with" in r["label"] for r in logins)


def test_a_path_measured_before_is_not_measured_again() -> None:
    t = FakeTarget()
    t.denial_s["ssh"] = 0.9
    ctx = CaseContext(t)
    path_s, _ = hung_login(ctx, "ssh")
    assert path_s == 0.9 and t.hung["ssh"].denial is None
    assert t.timeouts["ssh", "scenario:silence"] == hang_watch(t, 0.9)  # type: ignore[arg-type]
    assert ("ssh", "down") not in t.timeouts and ("su", "down") in t.timeouts
    assert [r["server"] for r in ctx.extra["logins"]] == ["scenario:silence"]


def test_a_login_that_raised_is_raised_in_its_own_case_only() -> None:
    t = FakeTarget(fail="su")
    _, ssh_hung = hung_login(CaseContext(t), "ssh")
    assert ssh_hung.latency_s == HUNG_S["ssh"] and t.hung["ssh"].error is None
    with pytest.raises(HarnessError, match="su: docker exec failed"):
        hung_login(CaseContext(t), "su")
    assert t.states[-1] == "reference"  # the server is back whatever the logins did


def test_the_reference_server_is_back_when_the_hung_server_cannot_start() -> None:
    t = FakeTarget(fail_state="scenario:silence")
    with pytest.raises(HarnessError, match="did not start"):
        hung_login(CaseContext(t), "ssh")
    assert t.states == ["down", "scenario:silence", "reference"]
    assert t.hung == {}  # nothing measured: the next R-M2 case tries again


def test_without_the_lab_the_hang_logins_are_skipped() -> None:
    """The root-less tier has no sshd or su: the R-M2 e2e cases SKIP, not ERROR."""
    from pamconform.core.outcome import Skip
    from pamconform.drivers.host_module import HostModuleTarget

    host = HostModuleTarget("host", cast(Any, None), cast(Any, None))
    with pytest.raises(Skip, match="lab"):
        hung_login(CaseContext(host), "ssh")
