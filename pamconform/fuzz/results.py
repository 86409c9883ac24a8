"""A fuzz run as a standard report target: one graded case per finding kind of the
protocol's model, findings as evidence."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pamconform.core.registry import Case
from pamconform.core.runner import CaseResult, TargetResult
from pamconform.core.verdicts import Severity, Verdict, effective
from pamconform.fuzz.engine import MEMORY, FuzzResult, model_for
from pamconform.fuzz.interface import Finding, FuzzModel


def _noop(ctx: Any) -> None:
    return None


def fuzz_cases(model: FuzzModel) -> list[Case]:
    """The fuzz cases (not registered: they are graded from a fuzz run, not run alone)."""
    return [Case(k.case_id, k.rule, Severity(k.severity), k.title, k.requirement,
                 model.protocol, "server", _noop, "fuzz")
            for k in model.kinds.values()]


def _finding_evidence(f: Finding, files: dict[str, Path], base: Path | None) -> dict[str, Any]:
    out = f.as_dict()
    path = files.get(f.file_name())
    if path is not None:
        inside = base is not None and path.is_relative_to(base)
        out["file"] = str(path.relative_to(base)) if inside and base else str(path)
    return out


def target_result(name: str, result: FuzzResult, *, strict: bool = False,
                  files: dict[str, Path] | None = None, base: Path | None = None,
                  model: FuzzModel | None = None) -> TargetResult:
    """Grade each fuzz case from the run's findings."""
    files = files or {}
    cfg = result.config
    model = model if model is not None else model_for(cfg.protocol)
    target = TargetResult(name=name, kind="server", protocol=cfg.protocol)
    by_kind: dict[str, list[Finding]] = {}
    for f in result.findings:
        by_kind.setdefault(f.kind, []).append(f)
    note = model.run_note(result)
    for case, kind in zip(fuzz_cases(model), model.kinds, strict=True):
        found = by_kind.get(kind, [])
        count = result.violations.get(kind, 0)
        evidence: dict[str, Any] = {"notes": [note]}
        if found:
            evidence["findings"] = [_finding_evidence(f, files, base) for f in found]
            if result.examples.get(kind):
                evidence["more_examples"] = result.examples[kind]
            first = found[0]
            where = files.get(first.file_name())
            message = (f"{count} violation(s); reproducer {first.reproducer()}: expected "
                       f"{first.expected}; got {first.observed}"
                       + (f" ({where.name})" if where else ""))
            verdict = Verdict.FAIL if case.severity is Severity.MUST else effective(
                Verdict.NON_STRICT, strict=strict)
        elif result.error:
            verdict, message = Verdict.ERROR, f"fuzzing stopped: {result.error}"
        elif kind == MEMORY and cfg.pid is None:
            verdict, message = Verdict.SKIPPED, "no --pid given: memory not watched"
        elif kind == MEMORY and not (result.memory or {}).get("samples"):
            verdict, message = Verdict.SKIPPED, f"could not read /proc/{cfg.pid}/status"
        else:
            verdict, message = Verdict.PASS, ""
        if kind == MEMORY and result.memory:
            evidence["memory"] = result.memory
        target.results.append(CaseResult(case, verdict, message, result.fuzz_seconds, evidence))
    target.info["fuzz"] = result.summary()
    return target
