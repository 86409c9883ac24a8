"""R-M3 end to end: whatever the server sends, sshd survives and keeps serving."""

from pamconform.core.outcome import Fail
from pamconform.core.registry import case_factory
from pamconform.core.verdicts import Severity
from pamconform.drivers.login_checks import expect_denied
from pamconform.lab.module_target import AUTH_PASSWORDS
from pamconform.protocols.redirector.e2e_steps import expect_alive, login, target

case = case_factory(protocol="redirector", kind="module", exclusive="lab-server")

ABUSE = ["scenario:reset", "scenario:close-before-read", "scenario:two-replies"]


@case(
    "redir.e2e.sshd-survives-abuse",
    rule="R-M3",
    severity=Severity.MUST,
    title="sshd survives a misbehaving server",
    requirement="After logins against servers that reset, close before reading, or reply "
    "twice (all denied), the same sshd process is running and grants a valid login.",
)
def sshd_survives(ctx):
    t = target(ctx)
    before = t.box.run(["pgrep", "-o", "-x", "sshd"], timeout=5).out.strip()
    try:
        for state in ABUSE:
            t.server(state)
            result = login(ctx, "ssh", "alice", AUTH_PASSWORDS["alice"], f"server {state}")
            expect_denied(result, f"a login against {state}")
    finally:
        t.server("reference")
    after = t.box.run(["pgrep", "-o", "-x", "sshd"], timeout=5).out.strip()
    ctx.note(f"sshd listener pid before {before or '-'}, after {after or '-'}")
    if not after or after != before:
        raise Fail("the same sshd listener before and after", f"{before!r} then {after!r}",
                   t.log_tail())
    expect_alive(ctx, "after abuse")
