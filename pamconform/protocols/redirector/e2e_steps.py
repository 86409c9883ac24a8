"""Shared steps and checkers of the end-to-end module suites (real sshd and su)."""

from __future__ import annotations

from collections.abc import Callable

from pamconform.core.context import CaseContext
from pamconform.core.outcome import Fail
from pamconform.drivers.login import LoginOutcome, LoginResult
from pamconform.lab.module_target import AUTH_PASSWORDS, ModuleTarget


def target(ctx: CaseContext) -> ModuleTarget:
    """The module under test (typed)."""
    return ctx.target  # type: ignore[no-any-return]


#: The most of a login path's own time to deny that is added to the hang bound: a path
#: slower than this to deny at once is slow itself, and must not widen its own bound.
PATH_CAP_S = 5.0
#: How long a hang login is watched past its bound, so that a late denial is reported
#: with its time instead of as HUNG.
HANG_GRACE_S = 5.0


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


def path_time(ctx: CaseContext, via: str, deny_at_once: Callable[[], LoginResult]) -> float:
    """The login path's own share of any denial (docker exec, the ssh handshake, su's
    FAIL_DELAY): how long ``deny_at_once`` (a login the module refuses without waiting,
    e.g. with no server listening) takes, at most PATH_CAP_S.  Measured once per target
    and login path."""
    t = target(ctx)
    if via not in t.denial_s:
        t.denial_s[via] = min(deny_at_once().latency_s, PATH_CAP_S)
    return t.denial_s[via]


def no_server_time(ctx: CaseContext, via: str) -> float:
    """:func:`path_time` of a redirector login with no server (leaves the server down)."""
    def deny() -> LoginResult:
        target(ctx).server("down")
        return login(ctx, via, "alice", AUTH_PASSWORDS["alice"],
                     f"no server: the time {via} takes to deny at once")
    return path_time(ctx, via, deny)


def hang_watch(t: ModuleTarget, path_s: float) -> float:
    """How long to watch a login while the server hangs: well past its bound, so that a
    late denial is reported with its time rather than as HUNG."""
    return max(t.login_timeout, t.hang_bound + path_s + HANG_GRACE_S)


def expect_bounded_denial(ctx: CaseContext, result: LoginResult, what: str,
                          path_s: float) -> None:
    """R-M2: denied within the hang bound plus the login path's own time to deny.

    The measured time is evidence whatever the verdict (``ctx.extra["hang"]``).
    """
    bound = target(ctx).hang_bound
    limit = bound + path_s
    took = result.latency_s
    ctx.extra["hang"] = {"outcome": str(result.outcome), "seconds": round(took, 3),
                         "bound_s": bound, "login_path_s": round(path_s, 3)}
    verb = "denied" if result.outcome is LoginOutcome.DENIED else str(result.outcome)
    ctx.note(f"{verb} after {took:.1f} s; bound {bound:.1f} s + {path_s:.1f} s the login "
             "path takes to deny at once")
    if result.outcome is LoginOutcome.HUNG:
        raise Fail(f"{what} to be DENIED within {limit:.1f} s (hang bound {bound:.1f} s + "
                   f"{path_s:.1f} s login path)", f"no verdict after {took:.1f} s: the login "
                   "hung (no bounded timeout in the module?)")
    expect_denied(result, what)
    if took > limit:
        raise Fail(f"{what} to be DENIED within {limit:.1f} s (hang bound {bound:.1f} s + "
                   f"{path_s:.1f} s login path)", f"denied only after {took:.1f} s")


def expect_alive(ctx: CaseContext, why: str) -> None:
    """The reference server back, sshd still running and still granting a valid login."""
    t = target(ctx)
    t.server("reference")
    if not t.sshd_running():
        raise Fail(f"sshd still running {why}", "sshd is gone",
                   t.log_tail())
    result = login(ctx, "ssh", "alice", AUTH_PASSWORDS["alice"], f"valid login {why}")
    expect_granted(result, f"a valid ssh login {why}")
