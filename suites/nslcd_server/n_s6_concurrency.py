"""N-S6: parallel exchanges each get their own answer."""

from pamconform.core.outcome import Fail
from pamconform.core.registry import case_factory
from pamconform.core.verdicts import Severity
from pamconform.protocols.nslcd.server_steps import ask, authc, target

case = case_factory(protocol="nslcd", kind="server")

#: Rounds of the mix below sent at once.
ROUNDS = 3


@case(
    "nslcd.server.parallel-verdicts",
    rule="N-S6",
    severity=Severity.MUST,
    title="Parallel requests get their own verdicts",
    requirement=f"{ROUNDS} rounds of right and wrong passwords for two users and an unknown "
    "user, all sent at once: no wrong password or unknown user is granted and every grant "
    "names the user it was asked for. A right password refused under load is NON-STRICT; "
    "latency is reported.",
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
    slowest = max(r.elapsed_s for r in results)
    refused_right = []
    for r, right in zip(results, rights, strict=True):
        ctx.note(f"{r.op.label}: {r.describe()}")
        if r.kind == "timeout":
            raise Fail(f"an answer within {r.op.timeout:g} s under load", f"hung: {r.describe()}")
        if r.granted and not right:
            raise Fail(f"no grant for {r.op.label}", r.describe(),
                       "requests in flight must not share state")
        asked = r.op.label.rsplit(" of ", 1)[1]
        if r.granted and (r.username or "").lower() != asked.lower():
            raise Fail(f"a grant naming {asked!r}", r.describe(),
                       "a reply carries another request's user")
        if right and not r.granted:
            refused_right.append(r.op.label)
    if refused_right:
        ctx.non_strict(f"right passwords refused under load: {', '.join(refused_right)}")
    ctx.informational(f"{len(ops)} parallel exchanges, slowest {slowest:.2f} s")
