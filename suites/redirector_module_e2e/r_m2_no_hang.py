"""R-M2 end to end: a hung server never hangs sshd or su."""

from functools import partial

from pamconform.core.registry import case_factory
from pamconform.core.verdicts import Severity
from pamconform.drivers.login_checks import expect_bounded_denial
from pamconform.protocols.redirector.e2e_steps import HUNG_VIAS, expect_alive, hung_login

case = case_factory(protocol="redirector", kind="module", exclusive=("lab-server", "timing"))


def _hung(via, ctx):
    path_s, result = hung_login(ctx, via)  # both paths side by side, in the first case
    ctx.measured()  # the alive check needs no quiet machine
    expect_bounded_denial(ctx, result, "a login while the server reads but never answers",
                          path_s)
    expect_alive(ctx, "after a hung server")


for _via in HUNG_VIAS:
    case(
        f"redir.e2e.{_via}-server-hung-denied",
        rule="R-M2",
        severity=Severity.MUST,
        title=f"A hung server is a bounded denial ({_via})",
        requirement=f"With a server that reads the request and never answers, the {_via} login "
        "is denied within the hang bound (--hang-bound, default the reference module's "
        f"timeout + 2 s) plus the time {_via} itself takes to deny when no server listens.",
    )(partial(_hung, _via))
