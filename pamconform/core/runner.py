"""Runs cases against a target and grades them; one code path for the CLI and pytest."""

from __future__ import annotations

import fnmatch
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pamconform.core import interrupts
from pamconform.core.context import CaseContext
from pamconform.core.errors import TargetUnreachable
from pamconform.core.outcome import Fail, Skip
from pamconform.core.registry import Case
from pamconform.core.verdicts import Severity, Verdict, effective

#: A case that runs longer than this is cut off and graded ERROR (its own timeouts failed).
CASE_BUDGET_S = 120.0


@dataclass
class CaseResult:
    """The graded outcome of one case against one target."""

    case: Case
    verdict: Verdict
    message: str
    duration_s: float
    evidence: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.case.as_dict())
        out.update(
            verdict=str(self.verdict),
            message=self.message,
            duration_s=round(self.duration_s, 4),
            evidence=self.evidence,
        )
        return out


@dataclass
class TargetResult:
    """All results of one target."""

    name: str
    kind: str
    protocol: str
    results: list[CaseResult] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    def count(self, verdict: Verdict) -> int:
        return sum(1 for r in self.results if r.verdict is verdict)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, "protocol": self.protocol}
        out.update(self.info)
        out["summary"] = {str(v): self.count(v) for v in Verdict if self.count(v)}
        out["cases"] = [r.as_dict() for r in self.results]
        return out


def select(cases: Iterable[Case], include: list[str], exclude: list[str]) -> list[Case]:
    """Filter cases by id globs (``--cases``/``--exclude-cases``)."""
    chosen = []
    for case in cases:
        if include and not any(fnmatch.fnmatchcase(case.id, g) for g in include):
            continue
        if any(fnmatch.fnmatchcase(case.id, g) for g in exclude):
            continue
        chosen.append(case)
    return chosen


def grade(case: Case, ctx: CaseContext, error: BaseException | None) -> tuple[Verdict, str]:
    """Turn how a case body ended into a verdict and a one-line message."""
    if isinstance(error, Fail):
        if case.severity is not Severity.MUST and not ctx.strict:
            return Verdict.NON_STRICT, f"{case.severity} not met: {error}"
        return Verdict.FAIL, str(error)
    if isinstance(error, TargetUnreachable):
        return Verdict.FAIL, f"the server could not be reached: {error}"
    if isinstance(error, Skip):
        return Verdict.SKIPPED, str(error)
    if error is not None:
        return Verdict.ERROR, f"harness error: {type(error).__name__}: {error}"
    if ctx.non_strict_reasons:
        verdict = effective(Verdict.NON_STRICT, strict=ctx.strict)
        return verdict, "; ".join(ctx.non_strict_reasons)
    if ctx.informational_reasons:
        return Verdict.INFORMATIONAL, "; ".join(ctx.informational_reasons)
    return Verdict.PASS, ""


def run_case(case: Case, target: Any, *, strict: bool = False) -> CaseResult:
    """Run one case body under a watchdog and grade it."""
    ctx = CaseContext(target=target, strict=strict)
    box: dict[str, BaseException] = {}

    def body() -> None:
        try:
            case.func(ctx)
        except BaseException as exc:  # graded below, never lost
            box["error"] = exc

    start = time.monotonic()
    worker = threading.Thread(target=body, name=f"case-{case.id}", daemon=True)
    try:
        worker.start()
        worker.join(CASE_BUDGET_S)
    except KeyboardInterrupt as exc:
        stopped = interrupts.as_interrupted(exc)
        stopped.partial = interrupted_result(case, stopped, time.monotonic() - start, ctx)
        raise stopped from None
    duration = time.monotonic() - start
    if worker.is_alive():
        verdict, message = Verdict.ERROR, f"case overran its {CASE_BUDGET_S:.0f} s budget"
    else:
        error = box.get("error")
        verdict, message = grade(case, ctx, error)
        if verdict is Verdict.ERROR and error is not None:
            ctx.extra["traceback"] = "".join(traceback.format_exception(error))
    return CaseResult(case, verdict, message, duration, ctx.evidence())


def interrupted_result(case: Case, stopped: interrupts.Interrupted, duration: float,
                       ctx: CaseContext | None = None) -> CaseResult:
    """The case that was running when the run was stopped, with its evidence so far."""
    evidence: dict[str, Any] = {}
    if ctx is not None:
        try:  # the case's thread may still be adding to it
            evidence = ctx.evidence()
        except RuntimeError:
            evidence = {}
    return CaseResult(case, Verdict.INTERRUPTED,
                      f"interrupted by {stopped.signame} after {duration:.1f} s: no verdict",
                      duration, evidence)


def not_run_results(cases: Iterable[Case], stopped: interrupts.Interrupted) -> list[CaseResult]:
    """The cases a stopped run never started."""
    message = f"not run: the run was stopped by {stopped.signame}"
    return [CaseResult(c, Verdict.NOT_RUN, message, 0.0) for c in cases]


def not_run_target(name: str, cases: list[Case], stopped: interrupts.Interrupted, *,
                   kind: str, protocol: str) -> TargetResult:
    """A target a stopped run never started: every case NOT-RUN."""
    out = TargetResult(name=name, kind=kind, protocol=protocol,
                       results=not_run_results(cases, stopped))
    out.info["interrupted"] = {"signal": stopped.signame, "case": None}
    return out


Progress = Callable[[int, int, CaseResult], None]


def run_target(
    cases: list[Case],
    target: Any,
    *,
    kind: str,
    protocol: str,
    strict: bool = False,
    progress: Progress | None = None,
) -> TargetResult:
    """Run cases one after another against a target.

    On Ctrl-C or SIGTERM, raises :class:`~pamconform.core.interrupts.Interrupted` whose
    ``partial`` is this target: the finished cases, the running one INTERRUPTED, the
    rest NOT-RUN.
    """
    out = TargetResult(name=target.name, kind=kind, protocol=protocol)
    running: Case | None = None
    try:
        for i, case in enumerate(cases, 1):
            running = case
            result = run_case(case, target, strict=strict)
            out.results.append(result)
            running = None
            if progress:
                progress(i, len(cases), result)
    except KeyboardInterrupt as exc:
        stopped = interrupts.as_interrupted(exc)
        if running is not None:
            current = stopped.partial if isinstance(stopped.partial, CaseResult) else \
                interrupted_result(running, stopped, 0.0)
            out.results.append(current)
            if progress:
                progress(len(out.results), len(cases), current)
        out.results += not_run_results(cases[len(out.results):], stopped)
        out.info["interrupted"] = {"signal": stopped.signame,
                                   "case": running.id if running else None}
        stopped.partial = out
        raise stopped from None
    return out


def exit_code(targets: list[TargetResult]) -> int:
    """0 when no case FAILs, 1 when any does, 3 when the harness broke (ERROR) and none failed."""
    verdicts = {r.verdict for t in targets for r in t.results}
    if Verdict.FAIL in verdicts:
        return 1
    if Verdict.ERROR in verdicts:
        return 3
    return 0
