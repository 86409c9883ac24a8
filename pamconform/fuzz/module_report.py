"""Module fuzzing results as a standard report target (kind "module")."""

from __future__ import annotations

from typing import Any

from pamconform.core.registry import Case
from pamconform.core.runner import CaseResult, TargetResult
from pamconform.core.verdicts import Severity, Verdict
from pamconform.fuzz.module_fuzz import ModuleFuzzResult


def _noop(ctx: Any) -> None:
    """Fuzz verdicts are computed from the run, not by a case body."""


#: (id, rule, title, requirement, finding kinds it covers)
CHECKS = [
    ("fuzz.module.grants-only-well-formed", "R-M1", "Only a well-formed grant grants",
     "Under generated server replies, PAM_SUCCESS comes only after exactly 0 or 0\\n.",
     ("fail-open",)),
    ("fuzz.module.bounded-time", "R-M2", "Every attempt returns in bounded time",
     "No generated server behaviour makes pam_authenticate outlive the hang bound.",
     ("hung",)),
    ("fuzz.module.host-survives", "R-M3", "The application survives every reply",
     "No generated server behaviour crashes the application or makes the module exit().",
     ("crashed", "exited")),
    ("fuzz.module.memcheck-clean", "R-M3", "Memcheck clean under generated replies",
     "Under valgrind, no generated reply causes an invalid access or uninitialised use.",
     ("memcheck",)),
]


def target_result(name: str, result: ModuleFuzzResult, settings: dict[str, Any]) -> TargetResult:
    out = TargetResult(name=name, kind="module", protocol="redirector")
    out.info.update(fuzz=result.summary() | settings)
    per_case = result.seconds / len(CHECKS)
    for cid, rule, title, requirement, kinds in CHECKS:
        case = Case(cid, rule, Severity.MUST, title, requirement, "redirector", "module",
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
