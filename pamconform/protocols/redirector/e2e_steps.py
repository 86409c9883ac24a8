"""Shared steps and checkers of the end-to-end module suites (real sshd and su)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from pamconform.core.context import CaseContext
from pamconform.core.errors import HarnessError
from pamconform.core.outcome import Fail
from pamconform.drivers.login import LoginResult
from pamconform.drivers.login_checks import expect_granted, hang_watch, path_seconds, path_time
from pamconform.lab.module_target import AUTH_PASSWORDS, ModuleTarget

#: The login paths whose R-M2 hang logins run side by side (:func:`hung_login`).
HUNG_VIAS = ("ssh", "su")


def target(ctx: CaseContext) -> ModuleTarget:
    """The module under test (typed)."""
    return ctx.target  # type: ignore[no-any-return]


def login(ctx: CaseContext, via: str, user: str, password: str, label: str,
          timeout: float | None = None) -> LoginResult:
    """Log in through ``ssh`` (keyboard-interactive), ``ssh-password`` or ``su``; record it."""
    t = target(ctx)
    if t.server_state == "direct":  # a direct-driver case left its scenario server
        t.server("reference")
    result = _log_in(t, via, user, password, timeout)
    record(ctx, label, via, t.server_state, result)
    return result


def _log_in(t: ModuleTarget, via: str, user: str, password: str,
            timeout: float | None) -> LoginResult:
    if via == "su":
        return t.su("mallory", user, password, timeout=timeout)
    if via == "ssh-password":
        return t.ssh(user, password, method="password", timeout=timeout)
    return t.ssh(user, password, timeout=timeout)


def record(ctx: CaseContext, label: str, via: str, server: str, result: LoginResult) -> None:
    """A login in the case's evidence."""
    ctx.extra.setdefault("logins", []).append(
        {"label": label, "via": via, "server": server, **result.as_evidence()})


def no_server_time(ctx: CaseContext, via: str) -> float:
    """:func:`path_time` of a redirector login with no server (leaves the server down)."""
    def deny() -> LoginResult:
        target(ctx).server("down")
        return login(ctx, via, "alice", AUTH_PASSWORDS["alice"],
                     f"no server: the time {via} takes to deny at once")
    return path_time(ctx, via, deny)


def expect_alive(ctx: CaseContext, why: str) -> None:
    """The reference server back, sshd still running and still granting a valid login."""
    t = target(ctx)
    t.server("reference")
    if not t.sshd_running():
        raise Fail(f"sshd still running {why}", "sshd is gone",
                   t.log_tail())
    result = login(ctx, "ssh", "alice", AUTH_PASSWORDS["alice"], f"valid login {why}")
    expect_granted(result, f"a valid ssh login {why}")


@dataclass
class HungLogin:
    """One login path's R-M2 measurement (:func:`hung_login`)."""

    #: the path's own time to deny with no server, and that login (None: measured before)
    path_s: float
    denial: LoginResult | None
    #: the login while the server reads and never answers, or what it raised
    hung: LoginResult | None
    error: BaseException | None = None


def hung_login(ctx: CaseContext, via: str) -> tuple[float, LoginResult]:
    """R-M2: ``via``'s own time to deny with no server, and its login while the server
    reads the request and never answers.

    Measured once per target for every path of :data:`HUNG_VIAS`, side by side, by the
    first R-M2 case that runs: first each path's time to deny with no server (both at
    once), then both logins against the hung server. Each waits out the module's timeout
    doing nothing; one after another they held the machine (a ``timing`` case) twice as
    long. Each case records its own path's logins in its evidence."""
    t = target(ctx)
    with _HUNG_LOCK:
        if via not in t.hung:
            _measure_hung(t, tuple(dict.fromkeys((via, *HUNG_VIAS))))
        measured: HungLogin = t.hung[via]
    together = " (side by side with " + ", ".join(v for v in t.hung if v != via) + ")"
    if measured.denial is not None:
        record(ctx, f"no server: the time {via} takes to deny at once{together}", via, "down",
               measured.denial)
    if measured.error is not None:
        raise measured.error
    assert measured.hung is not None  # no error: the login ended
    record(ctx, f"server hung{together}", via, "scenario:silence", measured.hung)
    return measured.path_s, measured.hung


_HUNG_LOCK = threading.Lock()


def _measure_hung(t: ModuleTarget, vias: tuple[str, ...]) -> None:
    user, password = "alice", AUTH_PASSWORDS["alice"]
    missing = [v for v in vias if v not in t.denial_s]
    denials: dict[str, LoginResult | BaseException] = {}
    try:  # whatever fails here, the cases after these find the reference server back
        if missing:
            t.server("down")
            denials = _side_by_side({v: partial(_log_in, t, v, user, password, None)
                                     for v in missing}, t.login_timeout)
            for v, r in denials.items():
                if isinstance(r, LoginResult):
                    t.denial_s[v] = path_seconds(r)
        ready = [v for v in vias if v in t.denial_s]
        t.server("scenario:silence")
        watch = {v: hang_watch(t, t.denial_s[v]) for v in ready}
        hung = _side_by_side({v: partial(_log_in, t, v, user, password, watch[v])
                              for v in ready}, max(watch.values(), default=0.0))
    finally:
        t.server("reference")
    for v in vias:
        denial = denials.get(v)
        result = hung.get(v)
        error = next((e for e in (denial, result) if isinstance(e, BaseException)), None)
        t.hung[v] = HungLogin(
            t.denial_s.get(v, 0.0), denial if isinstance(denial, LoginResult) else None,
            result if isinstance(result, LoginResult) else None, error)


#: How long side-by-side logins get past their own timeout before they count as lost.
SIDE_BY_SIDE_SLACK_S = 30.0


def _side_by_side(calls: dict[str, Callable[[], LoginResult]], timeout: float
                  ) -> dict[str, LoginResult | BaseException]:
    """Every call in a thread of its own, all at once (each bounded by ``timeout``): each
    one's result or exception."""
    out: dict[str, LoginResult | BaseException] = {}

    def run(name: str, call: Callable[[], LoginResult]) -> None:
        try:
            out[name] = call()
        except BaseException as exc:  # raised again in the case that owns this login
            out[name] = exc

    threads = [threading.Thread(target=run, args=item, name=f"login-{item[0]}", daemon=True)
               for item in calls.items()]
    for th in threads:
        th.start()
    deadline = time.monotonic() + timeout + SIDE_BY_SIDE_SLACK_S
    for th in threads:
        th.join(max(0.0, deadline - time.monotonic()))
    for name in calls:
        out.setdefault(name, HarnessError(
            f"the {name} login did not end within {timeout + SIDE_BY_SIDE_SLACK_S:.0f} s"))
    return out
