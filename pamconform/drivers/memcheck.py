"""The memory verdict of every protocol's module suite: valgrind memcheck and ASan.

One rule for all: a module attempt FAILS when valgrind reports any error that is not a
leak (whatever its kind, known to the harness or not), when AddressSanitizer reports
anything, or when the process did not survive (crashed, exited, hung). Definite leaks
are INFORMATIONAL, unless they grow with the number of attempts in one process (then
FAIL: an application that authenticates in a loop runs out of memory).

A suite gives a :class:`MemcheckRun` (how to run its requests, its evidence recorder)
and calls :func:`judge_memcheck` (see ``docs/module.md#memcheck``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pamconform.core.context import CaseContext
from pamconform.core.outcome import Fail
from pamconform.drivers.direct import Attempt

#: Attempts in one pamdrive process for the leak-growth check.
REPEATS = 3
#: Problems named in the FAIL line.
SHOWN = 4


def memory_errors(vg: dict[str, Any], *, killed: bool = False) -> list[str]:
    """Every non-leak valgrind error of an agent's summary, one line each with its frames.

    An unreadable report is a harness error, unless the process was ``killed`` (hung,
    crashed, exited): then valgrind was cut off mid-write, and the errors it had already
    written completely are the evidence.
    """
    if vg.get("errors") is None and not killed:
        raise RuntimeError(f"unreadable valgrind report: {str(vg.get('excerpt', ''))[:300]}")
    return [str(e) for key in ("invalid", "uninitialised", "other") for e in vg.get(key, [])]


def asan_errors(asan: dict[str, Any]) -> list[str]:
    """Every AddressSanitizer report of an attempt, one line each."""
    findings = [str(f) for f in asan.get("findings", [])]
    if int(asan.get("reports") or 0) > len(findings):  # pragma: no cover - agent invariant
        findings.append("AddressSanitizer report (unparsed)")
    return findings


def survival_problem(attempt: Attempt) -> str | None:
    """How the process failed to survive the attempt, or None."""
    if attempt.status == "hung":
        if attempt.raw.get("busy_at_timeout"):
            return f"still running after {attempt.wall_s:.1f} s, using the CPU past its " \
                "timeout and past the time a busy run is given, then killed (hung)"
        return f"still running after {attempt.wall_s:.1f} s, then killed (hung)"
    if attempt.status == "crashed":
        return f"pamdrive died of signal {attempt.raw.get('signal')}"
    if attempt.status == "exited":
        return f"the module ended the process (exit code {attempt.raw.get('exit_code')}, " \
            "exit() or _exit())"
    if attempt.status != "ran":
        raise RuntimeError(f"driver error: {attempt.raw.get('error') or ''} "
                           f"{str(attempt.raw.get('stderr', ''))[-300:]}")
    return None


def attempt_problems(attempt: Attempt) -> list[str]:
    """Everything that fails one attempt: memory errors first, then how it ended.

    Survival is judged first: a hung module's valgrind is killed mid-report, and that
    cut-off report is part of the hang, not a harness error.
    """
    died = survival_problem(attempt)
    out = [f"valgrind {e}" for e in memory_errors(attempt.valgrind, killed=died is not None)
           ] if attempt.valgrind else []
    asan = attempt.raw.get("asan")
    if isinstance(asan, dict):
        out += [f"ASan {e}" for e in asan_errors(asan)]
        # ASan ends the process after its report: that exit is the report, not the module's
        if died and not (asan.get("reports") and attempt.status == "exited"):
            out.append(f"under ASan: {died}")
    elif died:
        out.append(died)
    return out


def leaked(attempt: Attempt) -> int:
    """Definitely lost bytes in a valgrind attempt (0 without a report)."""
    return int(attempt.valgrind.get("definitely_lost_bytes") or 0)


def repeated(request: dict[str, Any], times: int = REPEATS) -> dict[str, Any]:
    """The same pamdrive request, authenticating ``times`` times in one process."""
    argv = list(request["argv"])
    passwords: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        if argv[i] == "--steps":
            i += 2
            continue
        if argv[i] == "--password":
            passwords.append(argv[i + 1])
            i += 2
            continue
        rest.append(argv[i])
        i += 1
    for _ in range(times):
        for p in passwords:
            rest += ["--password", p]
    rest += ["--steps", ",".join(["authenticate"] * times), "--keep-going"]
    return dict(request, argv=rest, timeout=float(request["timeout"]) * times)


@dataclass
class AsanModule:
    """How to drive the ASan build of the module, or why there is none."""

    #: rewrites a request to use the ASan build (service, LD_PRELOAD); None: not available
    rewrite: Callable[[dict[str, Any]], dict[str, Any]] | None
    why_not: str = ""


@dataclass
class MemcheckRun:
    """What the verdict needs from a suite: its request, its runner, its evidence."""

    #: the agent request of one attempt, with its timeout under valgrind
    request: dict[str, Any]
    run: Callable[[list[dict[str, Any]]], list[Attempt]]
    record: Callable[[str, Attempt], None]
    asan: AsanModule
    what: str


def judge_memcheck(ctx: CaseContext, m: MemcheckRun) -> None:
    """Run the attempt under valgrind and under ASan; FAIL on any finding of either."""
    reqs = [dict(m.request, valgrind=True)]
    if m.asan.rewrite is not None:
        reqs.append(dict(m.asan.rewrite(m.request), valgrind=False, asan=True))
    attempts = m.run(reqs)
    vg = attempts[0]
    m.record(f"memcheck: {m.what}", vg)
    if not vg.valgrind:
        raise RuntimeError("the agent returned no valgrind report")
    problems = attempt_problems(vg)
    if vg.raw.get("busy_at_timeout") and vg.status != "hung":
        ctx.note(f"valgrind's run was still using the CPU at its timeout (a loaded machine, "
                 f"not a wait); it was given more time and ended after {vg.wall_s:.1f} s")
    summary: dict[str, Any] = {"valgrind": memory_errors(vg.valgrind,
                                                         killed=vg.status != "ran")}
    if vg.valgrind.get("errors") is None:
        summary["valgrind_report"] = "cut off when the process was killed: only the " \
            "errors written completely before it"
    if m.asan.rewrite is not None:
        asan = attempts[1]
        m.record(f"ASan: {m.what}", asan)
        problems += attempt_problems(asan)
        if asan.status == vg.status == "ran" and asan.auth != vg.auth:
            ctx.note(f"the ASan build returned {asan.auth}, valgrind's run {vg.auth}")
        report = dict(asan.raw.get("asan") or {})
        summary["asan"] = asan_errors(report)
        if summary["asan"]:
            summary["asan_excerpt"] = str(report.get("excerpt", ""))[:3000]
    else:
        summary["asan"] = f"not run: {m.asan.why_not}"
        ctx.note(f"ASan not run: {m.asan.why_not}")
    ctx.extra["memory"] = summary
    if problems:
        more = f" (+{len(problems) - SHOWN} more)" if len(problems) > SHOWN else ""
        raise Fail(f"{m.what}: no memory error, and a process that survives",
                   "; ".join(problems[:SHOWN]) + more,
                   str(vg.valgrind.get("excerpt", ""))[:1500])
    _judge_leaks(ctx, m, vg)


def _judge_leaks(ctx: CaseContext, m: MemcheckRun, once: Attempt) -> None:
    """Definite leaks: INFORMATIONAL, FAIL when they grow with attempts in one process."""
    first = leaked(once)
    if first == 0:
        return
    again = m.run([dict(repeated(m.request), valgrind=True)])[0]
    m.record(f"memcheck, {REPEATS} attempts in one process: {m.what}", again)
    more = leaked(again)
    ctx.extra["leak_growth"] = {"attempts_1": first, f"attempts_{REPEATS}": more}
    if again.status == "ran" and more > first:
        raise Fail(f"{m.what}: no leak that grows with each attempt",
                   f"definitely lost {first} bytes after 1 attempt, {more} bytes after "
                   f"{REPEATS} in one process", str(again.valgrind.get("excerpt", ""))[:1500])
    ctx.informational(f"leaks: {once.valgrind.get('leaks')} (the same after {REPEATS} "
                      "attempts in one process)" if again.status == "ran" else
                      f"leaks: {once.valgrind.get('leaks')} (growth not checked: "
                      f"{again.status} with {REPEATS} attempts)")
