"""N-M4: the module never crashes the process that loaded it. Every daemon behaviour of
N-M1 is replayed with pamdrive under valgrind memcheck: no invalid access, no use of an
uninitialised value (leaks are INFORMATIONAL). The stalls of N-M2 are left out here: they
take the module's whole wait (60 s for pam_ldap), six times over under valgrind."""

from functools import partial

from pamconform.core.outcome import Fail
from pamconform.core.registry import case_factory
from pamconform.core.verdicts import Severity
from pamconform.protocols.nslcd.module_steps import (
    OTHER_USERS,
    REFUSALS,
    SAME_USER_OTHER_CASE,
    UNTERMINATED,
    expect_ran,
    play,
    target,
)

case = case_factory(protocol="nslcd", kind="module", exclusive="lab-server")

BEHAVIOURS = [("grant", "grant", {}, "answers success"), *REFUSALS, SAME_USER_OTHER_CASE]
BEHAVIOURS += UNTERMINATED + OTHER_USERS


def _memcheck(scenario, args, what, ctx):
    t = target(ctx)
    attempt = play(ctx, scenario, args, valgrind=True)
    expect_ran(attempt, f"pamdrive under valgrind while the daemon {what}", t.hang_bound * 6)
    vg = attempt.valgrind
    if not vg:
        raise RuntimeError("the agent returned no valgrind report")
    bad = list(vg.get("invalid", [])) + list(vg.get("uninitialised", []))
    if bad:
        raise Fail("no invalid memory access", "; ".join(str(b) for b in bad[:5]),
                   str(vg.get("excerpt", ""))[:1500])
    leaks = str(vg.get("leaks", ""))
    if leaks and "definitely lost: 0 bytes" not in leaks:
        ctx.informational(f"leaks: {leaks}")


for _name, _scenario, _args, _what in BEHAVIOURS:
    case(
        f"nslcd.module.memcheck-{_name}",
        rule="N-M4",
        severity=Severity.MUST,
        title=f"Memcheck clean when the daemon {_what}",
        requirement=f"Under valgrind memcheck, while the daemon {_what}, the module makes no "
        "invalid read or write, uses no uninitialised value, and does not crash or exit.",
    )(partial(_memcheck, _scenario, _args, _what))
