"""N-S6: parallel exchanges each get their own answer."""

from pamconform.core.outcome import Fail
from pamconform.core.registry import case_factory
from pamconform.core.verdicts import Severity
from pamconform.protocols.nslcd.server_steps import Result, ask, authc, target

case = case_factory(protocol="nslcd", kind="server", exclusive="user-state")

#: Rounds of the mix below sent at once.
ROUNDS = 3

#: Words a FAIL for a reply delivered to the wrong request carries (reports and tests
#: look for them).
CROSS_TALK = "cross-talk"


def asked_user(r: Result) -> str:
    """The user an exchange of this case asked about (its label ends ``of <user>``)."""
    return r.op.label.rsplit(" of ", 1)[1]


def names_other(r: Result) -> bool:
    """The reply names a user other than the one asked about."""
    return r.username is not None and r.username.lower() != asked_user(r).lower()


def names_one_in_flight(r: Result, asked: set[str]) -> bool:
    """The reply names another user asked about by a request in flight (a refusal with a
    blank or made-up name is no sign of crossed replies)."""
    return names_other(r) and (r.username or "").lower() in asked


def check_no_wrong_grant(results: list[Result], rights: list[bool]) -> None:
    """FAIL on a grant of a wrong/empty password or unknown user, or naming another user.

    Looked for across every exchange before anything else (a hang elsewhere must not
    hide it), so the verdict does not depend on the order the answers came in. Each
    exchange has a connection of its own: a grant naming another request's user, or a
    grant for a request that cannot be right, is that request's answer written to this
    connection.
    """
    for r, right in zip(results, rights, strict=True):
        if not r.granted or (right and not names_other(r)):
            continue
        asked = asked_user(r)
        if names_other(r):
            source = f"{r.username!r}, another request's user in flight"
        else:
            source = f"{asked!r}, whose right password was in flight at the same time"
        raise Fail(
            f"no grant for {r.op.label}" if not right else f"a grant naming {asked!r}",
            r.describe(),
            f"{CROSS_TALK}: a grant on a connection of its own naming {source}: the daemon "
            "answered this request with another one's result (replies written to the "
            "wrong connection, or state shared by requests in flight)")


@case(
    "nslcd.server.parallel-verdicts",
    rule="N-S6",
    severity=Severity.MUST,
    title="Parallel requests get their own verdicts",
    requirement=f"{ROUNDS} rounds of right and wrong passwords for two users and an unknown "
    "user, all sent at once: no wrong password or unknown user is granted and every grant "
    "names the user it was asked for. A right password refused under load is NON-STRICT "
    "(the second user is the expired account when named, which a daemon may refuse at "
    "authc: its refusal is right too); latency is reported.",
)
def parallel_verdicts(ctx):
    t = target(ctx)
    a = t.accounts
    second = a.expired if a.expired is not None else a.user  # a second user when known
    password = a.expired_password if a.expired is not None else a.password
    mix = [(a.user, a.password, True), (second, password, True),
           (a.user, b"not-" + a.password, False), (second, b"", False),
           (a.unknown, a.password, False)]
    ops, rights = [], []
    for i in range(ROUNDS):
        for user, password, right in mix:
            what = "right" if right else ("empty" if not password else "wrong")
            ops.append(authc(t, user, password, f"round {i + 1}: {what} password of {user}"))
            rights.append(right)
    results = ask(ctx, *ops, parallel=True)
    for r in results:
        ctx.note(f"{r.op.label}: {r.describe()}")
    check_no_wrong_grant(results, rights)
    for r in results:
        if r.kind == "timeout":
            raise Fail(f"an answer within {r.op.timeout:g} s under load", f"hung: {r.describe()}")
    # N-S3 lets a daemon refuse the expired account already at authc
    may_refuse = {a.expired} if a.expired is not None else set()
    refused_right = [r.op.label for r, right in zip(results, rights, strict=True)
                     if right and not r.granted and asked_user(r) not in may_refuse]
    if refused_right:
        ctx.non_strict(f"right passwords refused under load: {', '.join(refused_right)}")
    asked = {user.lower() for user, _, _ in mix}
    crossed = [f"{r.op.label} ({r.describe()})" for r in results
               if names_one_in_flight(r, asked)]
    if crossed:  # refusals only (a grant FAILed above): nobody gets in, but replies cross
        ctx.non_strict(f"{CROSS_TALK}: refusals naming another user: {'; '.join(crossed)}")
    slowest = max(r.elapsed_s for r in results)
    ctx.informational(f"{len(ops)} parallel exchanges, slowest {slowest:.2f} s")
