"""Module fuzzing results as a standard report target (kind "module")."""

from __future__ import annotations

from typing import Any

from pamconform.core.registry import Case
from pamconform.core.runner import CaseResult, TargetResult
from pamconform.core.verdicts import Severity, Verdict
from pamconform.fuzz.module_fuzz import ModuleFuzzModel, ModuleFuzzResult


def _noop(ctx: Any) -> None:
    """Fuzz verdicts are computed from the run, not by a case body."""


def target_result(name: str, result: ModuleFuzzResult, settings: dict[str, Any],
                  model: ModuleFuzzModel) -> TargetResult:
    out = TargetResult(name=name, kind="module", protocol=model.protocol)
    out.info.update(fuzz=result.summary() | settings)
    checks = model.checks
    per_case = result.seconds / len(checks)
    for cid, rule, title, requirement, kinds in checks:
        case = Case(cid, rule, Severity.MUST, title, requirement, model.protocol, "module",
                    _noop, "fuzz.module")
        found = [f for f in result.findings if f.kind in kinds]
        evidence: dict[str, Any] = {"notes": [
            f"{result.examples} examples in {result.rounds} rounds "
            f"({result.valgrind_runs} under valgrind), seed {settings.get('seed')}"]}
        if found:
            evidence["findings"] = [f.as_dict() for f in found[:10]]
            message = f"{len(found)} finding(s); first: server {found[0].plan}"
            verdict = Verdict.FAIL
        elif cid.endswith("memcheck-clean") and result.valgrind_runs == 0:
            verdict, message = Verdict.SKIPPED, "no attempt ran under valgrind"
        else:
            verdict, message = Verdict.PASS, ""
        out.results.append(CaseResult(case, verdict, message, per_case, evidence))
    return out
