"""T-M3 end to end: su survives whatever is typed at its prompt."""


from pamconform.core.outcome import Fail
from pamconform.core.registry import case_factory
from pamconform.core.verdicts import Severity
from pamconform.drivers.login_checks import (
    expect_denied,
)
from pamconform.protocols.token.e2e_steps import (
    expect_alive,
    login,
    target,
    uid,
)

case = case_factory(protocol="transient-token", kind="module")


@case(
    "token.e2e.su-survives-huge-token",
    rule="T-M3",
    severity=Severity.MUST,
    title="A huge token does not crash su",
    requirement="A 4,000-character token typed at su's prompt is refused with a normal "
    "denial (no crash, no hang), and su keeps working.",
)
def huge_token(ctx):
    t = target(ctx)
    token = f"TTK{uid(t, 'alice')}:1:" + "A" * 4000
    result = login(ctx, "su", "alice", token, "4,000-character token")
    expect_denied(result, "a huge token")
    if "Segmentation" in result.transcript or "core dumped" in result.transcript:
        raise Fail("no crash", result.transcript[-300:])
    expect_alive(ctx, "after a huge token")
