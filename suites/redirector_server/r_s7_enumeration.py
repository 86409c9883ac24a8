"""R-S7: no telling whether a user exists."""

import statistics
import time

from pamconform.core.outcome import Fail
from pamconform.core.registry import case_factory
from pamconform.core.verdicts import Severity
from pamconform.protocols.redirector.server_steps import (
    expect_deny,
    login,
    stranger,
    target,
    wrong_password,
)

case = case_factory(protocol="redirector", kind="server")

TIMING_SAMPLES = 5


@case(
    "redir.server.no-user-enumeration",
    rule="R-S7",
    severity=Severity.MUST,
    title="Same reply for an unknown user and a wrong password",
    requirement="The server's reply to an unknown user is byte-for-byte the reply to a known "
    "user with a wrong password.",
)
def no_user_enumeration(ctx):
    t = target(ctx)
    known = login(ctx, t.user, wrong_password(t.password))
    unknown = login(ctx, stranger("user"), wrong_password(t.password))
    expect_deny(ctx, known, "a known user with a wrong password")
    expect_deny(ctx, unknown, "an unknown user")
    if known.data != unknown.data:
        raise Fail("identical replies", f"known user -> {known.data!r}, unknown user -> "
                   f"{unknown.data!r}: the reply tells whether the user exists")


@case(
    "redir.server.timing-unknown-vs-wrong",
    exclusive="timing",
    rule="R-S7",
    severity=Severity.MAY,
    title="Timing: unknown user against wrong password",
    requirement=f"Reported only: the median reply time of {TIMING_SAMPLES} unknown-user and "
    f"{TIMING_SAMPLES} wrong-password logins.",
)
def timing_unknown_vs_wrong(ctx):
    t = target(ctx)
    times: dict[str, list[float]] = {"known": [], "unknown": []}
    for _ in range(TIMING_SAMPLES):
        for label, user in (("known", t.user), ("unknown", stranger("user"))):
            start = time.monotonic()
            login(ctx, user, wrong_password(t.password))
            times[label].append(time.monotonic() - start)
    known, unknown = (statistics.median(times[k]) * 1000 for k in ("known", "unknown"))
    ctx.extra["timing_ms"] = {k: [round(x * 1000, 2) for x in v] for k, v in times.items()}
    gap = abs(known - unknown)
    verdict = "measurable" if gap > 20 and gap > 0.5 * min(known, unknown) else "small"
    ctx.informational(f"median wrong-password {known:.1f} ms, unknown-user {unknown:.1f} ms "
                      f"(difference {gap:.1f} ms: {verdict})")
