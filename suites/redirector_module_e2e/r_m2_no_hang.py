"""R-M2 end to end: a hung server never hangs sshd or su."""

from functools import partial

from pamconform.core.registry import case_factory
from pamconform.core.verdicts import Severity
from pamconform.drivers.login_checks import expect_bounded_denial, hang_watch
from pamconform.lab.module_target import AUTH_PASSWORDS
from pamconform.protocols.redirector.e2e_steps import expect_alive, login, no_server_time, target

case = case_factory(protocol="redirector", kind="module", exclusive=("lab-server", "timing"))


def _hung(via, ctx):
    t = target(ctx)
    try:
        path_s = no_server_time(ctx, via)
        t.server("scenario:silence")
        result = login(ctx, via, "alice", AUTH_PASSWORDS["alice"], "server hung",
                       timeout=hang_watch(t, path_s))
        expect_bounded_denial(ctx, result, "a login while the server reads but never answers",
                              path_s)
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
        "is denied within the hang bound (--hang-bound, default the reference module's "
        f"timeout + 2 s) plus the time {_via} itself takes to deny when no server listens.",
    )(partial(_hung, _via))
