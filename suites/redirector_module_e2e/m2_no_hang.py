"""R-M2 end to end: a hung server never hangs sshd or su."""

from functools import partial

from pamconform.e2e_checks import expect_alive, expect_denied, login, target
from pamconform.module_target import AUTH_PASSWORDS
from pamconform.registry import case_factory
from pamconform.verdicts import Severity

case = case_factory(protocol="redirector", kind="module")


def _hung(via, ctx):
    t = target(ctx)
    try:
        t.server("scenario:silence")
        result = login(ctx, via, "alice", AUTH_PASSWORDS["alice"], "server hung")
        ctx.note(f"denied after {result.latency_s:.2f} s (bound {t.login_timeout:.0f} s)")
        expect_denied(result, "a login while the server reads but never answers")
    finally:
        t.server("reference")
    expect_alive(ctx, "after a hung server")


for _via in ("ssh", "su"):
    case(
        f"redir.e2e.{_via}-server-hung-denied",
        rule="R-M2",
        severity=Severity.MUST,
        title=f"A hung server is a bounded denial ({_via})",
        requirement=f"With a server that reads the request and never answers, the {_via} login "
        "is denied within the login timeout instead of hanging.",
    )(partial(_hung, _via))
