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

#: Logins of each kind, interleaved. Seven against seven with at most one pair out of
#: order (one kind faster) happens by chance 4 times in 3,432 when both cost the same.
TIMING_SAMPLES = 7
#: A valid login (untimed) after this many wrong passwords of the known user.
GRANT_EVERY = 3
#: Pairs (unknown, known) allowed out of order: one slow reply must not hide the rest.
TIMING_CROSSINGS = 1
#: How much slower one kind's median must be (a factor, and milliseconds) to count.
TIMING_FACTOR = 2.0
TIMING_MIN_GAP_MS = 1.0


@case(
    "redir.server.no-user-enumeration",
    exclusive="first-login",
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
    severity=Severity.SHOULD,
    title="Timing: unknown user against wrong password",
    requirement=f"The reply time should not tell an unknown user from a known one: over "
    f"{TIMING_SAMPLES} unknown-user and {TIMING_SAMPLES} wrong-password logins, "
    "interleaved, it is NON-STRICT when the replies of one kind came faster than those of "
    f"the other in all but at most {TIMING_CROSSINGS} of the {TIMING_SAMPLES ** 2} pairs, "
    f"and the medians differ by at least {TIMING_FACTOR:g} times and "
    f"{TIMING_MIN_GAP_MS:g} ms (a server that skips the password hash for unknown users); "
    "otherwise the medians are reported.",
)
def timing_unknown_vs_wrong(ctx):
    t = target(ctx)
    times: dict[str, list[float]] = {"known": [], "unknown": []}
    for i in range(TIMING_SAMPLES):
        if i % GRANT_EVERY == 0:
            # untimed: a lock-out after consecutive failures (the server's policy) would
            # answer the later wrong passwords at once and pass for a timing leak
            login(ctx, t.user, t.password)
        for label, user in (("known", t.user), ("unknown", stranger("user"))):
            start = time.monotonic()
            login(ctx, user, wrong_password(t.password))
            times[label].append((time.monotonic() - start) * 1000)
    ctx.extra["timing_ms"] = {k: [round(x, 2) for x in v] for k, v in times.items()}
    known, unknown = (statistics.median(times[k]) for k in ("known", "unknown"))
    slow, fast = max(known, unknown), min(known, unknown)
    # Mann-Whitney U: how many (unknown, known) pairs have the unknown reply slower
    slower = sum(u > k for u in times["unknown"] for k in times["known"])
    apart = min(slower, TIMING_SAMPLES ** 2 - slower) <= TIMING_CROSSINGS
    said = (f"median wrong-password {known:.1f} ms, unknown-user {unknown:.1f} ms "
            f"(difference {slow - fast:.1f} ms)")
    if apart and slow >= TIMING_FACTOR * fast and slow - fast >= TIMING_MIN_GAP_MS:
        ctx.non_strict(f"{said}: the {'unknown-user' if unknown < known else 'known-user'} "
                       "replies came faster, so timing tells whether a user exists")
    else:
        ctx.informational(said)
