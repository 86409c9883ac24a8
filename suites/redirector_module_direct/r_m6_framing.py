"""R-M6: credentials that cannot be framed unambiguously are never sent."""

from pamconform.core.outcome import Fail
from pamconform.core.registry import case_factory
from pamconform.core.verdicts import Severity
from pamconform.protocols.redirector.direct_steps import (
    PASSWORD,
    direct,
    expect_denied,
    expect_ran,
    probe_service,
    received,
    record,
)

case = case_factory(protocol="redirector", kind="module")


def _newline(ctx, user: str, password: str) -> None:
    d = direct(ctx)
    proc = d.scenario("grant")
    attempt = d.one(probe_service(d), user=user, passwords=[password])
    record(ctx, f"user {user!r} password {password!r}", attempt)
    log = proc.log(wait=5)
    ctx.extra["server_log"] = log
    got = received(log)
    expect_ran(attempt, "a login with a newline in the credentials", d.hang_bound)
    if got:
        raise Fail("nothing sent for credentials that cannot be framed", f"sent {got!r}")
    expect_denied(attempt, "a login with a newline in the credentials", d.hang_bound)


@case(
    "redir.module.newline-in-password",
    rule="R-M6",
    severity=Severity.MUST,
    title="A newline in the password is refused",
    requirement="A password containing \\n (which would frame as a different request) is "
    "refused without contacting the server.",
)
def newline_in_password(ctx):
    _newline(ctx, "alice", "x\nalice")


@case(
    "redir.module.newline-in-user",
    rule="R-M6",
    severity=Severity.MUST,
    title="A newline in the user name is refused",
    requirement="A user name containing \\n is refused without contacting the server.",
)
def newline_in_user(ctx):
    _newline(ctx, "alice\nbob", PASSWORD)
