"""Shared steps and checkers of the end-to-end module suites (real sshd and su)."""

from __future__ import annotations

from pamconform.context import CaseContext
from pamconform.drivers.login import LoginOutcome, LoginResult
from pamconform.module_target import AUTH_PASSWORDS, ModuleTarget
from pamconform.outcome import Fail


def target(ctx: CaseContext) -> ModuleTarget:
    """The module under test (typed)."""
    return ctx.target  # type: ignore[no-any-return]


def login(ctx: CaseContext, via: str, user: str, password: str, label: str) -> LoginResult:
    """Log in through ``ssh`` (keyboard-interactive), ``ssh-password`` or ``su``; record it."""
    t = target(ctx)
    if t.server_state == "direct":  # a direct-driver case left its scenario server
        t.server("reference")
    if via == "su":
        result = t.su("mallory", user, password)
    elif via == "ssh-password":
        result = t.ssh(user, password, method="password")
    else:
        result = t.ssh(user, password)
    ctx.extra.setdefault("logins", []).append(
        {"label": label, "via": via, "server": t.server_state, **result.as_evidence()}
    )
    return result


def expect_granted(result: LoginResult, what: str) -> None:
    if result.outcome is not LoginOutcome.GRANTED:
        raise Fail(f"{what} to be GRANTED", f"{result.outcome} after {result.latency_s:.2f} s "
                   f"({result.detail})")


def expect_denied(result: LoginResult, what: str) -> None:
    """Denied, and in bounded time: GRANTED fails open (R-M1), HUNG hangs the app (R-M2)."""
    if result.outcome is LoginOutcome.GRANTED:
        raise Fail(f"{what} to be DENIED", f"GRANTED after {result.latency_s:.2f} s: "
                   "the module failed open")
    if result.outcome is LoginOutcome.HUNG:
        raise Fail(f"{what} to be DENIED within {result.latency_s:.0f} s",
                   "no answer: the login hung (no bounded timeout in the module?)")
    if result.outcome is LoginOutcome.ERROR:
        raise Fail(f"{what} to be DENIED", f"ERROR: {result.detail}")


def expect_alive(ctx: CaseContext, why: str) -> None:
    """The reference server back, sshd still running and still granting a valid login."""
    t = target(ctx)
    t.server("reference")
    if not t.sshd_running():
        raise Fail(f"sshd still running {why}", "sshd is gone",
                   t.log_tail())
    result = login(ctx, "ssh", "alice", AUTH_PASSWORDS["alice"], f"valid login {why}")
    expect_granted(result, f"a valid ssh login {why}")
