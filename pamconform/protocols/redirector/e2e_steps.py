"""Shared steps and checkers of the end-to-end module suites (real sshd and su)."""

from __future__ import annotations

from pamconform.core.context import CaseContext
from pamconform.core.outcome import Fail
from pamconform.drivers.login import LoginResult
from pamconform.drivers.login_checks import expect_granted, path_time
from pamconform.lab.module_target import AUTH_PASSWORDS, ModuleTarget


def target(ctx: CaseContext) -> ModuleTarget:
    """The module under test (typed)."""
    return ctx.target  # type: ignore[no-any-return]


def login(ctx: CaseContext, via: str, user: str, password: str, label: str,
          timeout: float | None = None) -> LoginResult:
    """Log in through ``ssh`` (keyboard-interactive), ``ssh-password`` or ``su``; record it."""
    t = target(ctx)
    if t.server_state == "direct":  # a direct-driver case left its scenario server
        t.server("reference")
    if via == "su":
        result = t.su("mallory", user, password, timeout=timeout)
    elif via == "ssh-password":
        result = t.ssh(user, password, method="password", timeout=timeout)
    else:
        result = t.ssh(user, password, timeout=timeout)
    ctx.extra.setdefault("logins", []).append(
        {"label": label, "via": via, "server": t.server_state, **result.as_evidence()}
    )
    return result


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
