"""N-M4: the module never crashes the process that loaded it. Every daemon behaviour of
N-M1 is replayed with pamdrive under valgrind memcheck, judged by
``pamconform.drivers.memcheck.judge_memcheck`` (docs/module.md#memcheck): any valgrind
error but a leak, a crash, an exit or a hang FAILS; definite leaks are INFORMATIONAL
unless they grow with the number of attempts in one process. The module is installed as
a binary (Debian's pam_ldap), so there is no ASan build: the evidence says so. The
stalls of N-M2 are left out here: they take the module's whole wait (60 s for pam_ldap),
six times over under valgrind."""

from functools import partial

from pamconform.core.registry import case_factory
from pamconform.core.verdicts import Severity
from pamconform.drivers.agent import CONTAINER_AGENT_ARGV, container_exec, run_batch
from pamconform.drivers.direct import Attempt
from pamconform.drivers.memcheck import AsanModule, MemcheckRun, judge_memcheck
from pamconform.protocols.nslcd.module_steps import (
    OTHER_USERS,
    PASSWORD,
    REFUSALS,
    SAME_USER_OTHER_CASE,
    UNTERMINATED,
    record,
    target,
)
from pamconform.protocols.nslcd.module_target import LOGIN_USER, PROBE_SERVICE

case = case_factory(protocol="nslcd", kind="module", exclusive=("lab-server", "valgrind"))

BEHAVIOURS = [("grant", "grant", {}, "answers success"), *REFUSALS, SAME_USER_OTHER_CASE]
BEHAVIOURS += UNTERMINATED + OTHER_USERS


#: A run under valgrind may take this long: every behaviour here ends at once (the daemon
#: closes right after sending), so a module still running then hangs. Kept well inside the
#: runner's case budget (three runs, for leak growth), so a hang is a FAIL, not an ERROR
#: (six hang bounds would be 372 s for pam_ldap).
MEMCHECK_TIMEOUT_S = 60.0


def _run(t, requests):
    reqs = [dict(r, id=i) for i, r in enumerate(requests)]
    budget = sum(r["timeout"] for r in reqs) + 30
    results = run_batch(container_exec(t.box), reqs, budget,
                        agent_argv=[*CONTAINER_AGENT_ARGV, "--jobs", "1"])
    return [Attempt(r) for r in results]


def _memcheck(scenario, args, what, ctx):
    t = target(ctx)
    proc = t.scenario(scenario, **args)
    built = t.module.built_from
    judge_memcheck(ctx, MemcheckRun(
        request={"argv": ["--service", PROBE_SERVICE, "--user", LOGIN_USER,
                          "--password", PASSWORD, "--steps", "authenticate"],
                 "timeout": min(t.hang_bound * 6, MEMCHECK_TIMEOUT_S), "valgrind": True},
        run=partial(_run, t),
        record=partial(record, ctx),
        asan=AsanModule(None, f"{t.module.label} is installed as built (from {built}), "
                        "without an ASan variant" if built else
                        f"{t.module.label} is a packaged binary: no source to build with "
                        "-fsanitize=address"),
        what=f"a login while the daemon {what}",
    ))
    ctx.extra["daemon_sent_hex"] = [r.get("sent_hex", "")[:160] for r in proc.log(wait=1)]


for _name, _scenario, _args, _what in BEHAVIOURS:
    case(
        f"nslcd.module.memcheck-{_name}",
        rule="N-M4",
        severity=Severity.MUST,
        title=f"Memory clean when the daemon {_what}",
        requirement=f"While the daemon {_what}, valgrind memcheck reports no error but "
        "leaks, the process neither crashes nor exits, and no definite leak grows with the "
        "number of attempts.",
    )(partial(_memcheck, _scenario, _args, _what))
