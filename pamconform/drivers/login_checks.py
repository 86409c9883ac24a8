"""Login expectations shared by every protocol's end-to-end module suites (sshd, su).

A case logs in through :mod:`pamconform.drivers.login` and grades the result here: granted,
denied, or denied within the module's hang bound plus the login path's own time to deny.
"""

from __future__ import annotations

from collections.abc import Callable

from pamconform.core.context import CaseContext
from pamconform.core.outcome import Fail
from pamconform.drivers.login import LoginOutcome, LoginResult
from pamconform.lab.module_target import ModuleTarget


def _target(ctx: CaseContext) -> ModuleTarget:
    return ctx.target  # type: ignore[no-any-return]


#: The most of a login path's own time to deny that is added to the hang bound: a path
#: slower than this to deny at once is slow itself, and must not widen its own bound.
PATH_CAP_S = 5.0
#: How long a hang login is watched past its bound, so that a late denial is reported
#: with its time instead of as HUNG.
HANG_GRACE_S = 5.0


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
    t = _target(ctx)
    if via not in t.denial_s:
        t.denial_s[via] = path_seconds(deny_at_once())
    return t.denial_s[via]


def path_seconds(denial: LoginResult) -> float:
    """What a login denied at once says of its path's own time to deny: its latency, at
    most PATH_CAP_S."""
    return min(denial.latency_s, PATH_CAP_S)


def hang_watch(t: ModuleTarget, path_s: float) -> float:
    """How long to watch a login while the server hangs: well past its bound, so that a
    late denial is reported with its time rather than as HUNG."""
    return max(t.login_timeout, t.hang_bound + path_s + HANG_GRACE_S)


def expect_bounded_denial(ctx: CaseContext, result: LoginResult, what: str,
                          path_s: float) -> None:
    """R-M2: denied within the hang bound plus the login path's own time to deny.

    The measured time is evidence whatever the verdict (``ctx.extra["hang"]``).
    """
    bound = _target(ctx).hang_bound
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
