"""R-M3: under valgrind memcheck, no invalid access and no uninitialised use, whatever the
server does: every server behaviour of the direct suite is replayed under memcheck. Leaks
are reported as INFORMATIONAL with the valgrind excerpt."""

from functools import partial

from pamconform.core.outcome import Fail
from pamconform.core.registry import case_factory
from pamconform.core.verdicts import Severity
from pamconform.protocols.redirector.direct_steps import (
    PASSWORD,
    direct,
    every_behaviour,
    expect_ran,
    probe_service,
    record,
)

case = case_factory(protocol="redirector", kind="module", exclusive="lab-server")

def _memcheck(scenario, args, ctx):
    d = direct(ctx)
    d.scenario(scenario, **args)
    attempt = d.one(probe_service(d), passwords=[PASSWORD], valgrind=True)
    record(ctx, f"memcheck, scenario {scenario}", attempt)
    expect_ran(attempt, f"pamdrive under valgrind with {scenario}", d.hang_bound * 6)
    vg = attempt.valgrind
    if not vg:
        raise RuntimeError("the agent returned no valgrind report")
    bad = list(vg.get("invalid", [])) + list(vg.get("uninitialised", []))
    if bad:
        raise Fail("no invalid memory access", "; ".join(str(b) for b in bad[:5]),
                   str(vg.get("excerpt", ""))[:1500])
    leaks = str(vg.get("leaks", ""))
    if "definitely lost: 0 bytes" not in leaks and leaks:
        ctx.informational(f"leaks: {leaks}")


for _name, _scenario, _args in every_behaviour():
    case(
        f"redir.module.memcheck-{_name}",
        rule="R-M3",
        severity=Severity.MUST,
        title=f"Memcheck clean when the server does {_name}",
        requirement=f"Under valgrind memcheck with the server playing {_name}, the module makes "
        "no invalid read or write and uses no uninitialised value.",
    )(partial(_memcheck, _scenario, _args))
