"""A fuzz run as a standard report target: one graded case per oracle, findings as evidence."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pamconform.core.registry import Case
from pamconform.core.runner import CaseResult, TargetResult
from pamconform.core.verdicts import Severity, Verdict, effective
from pamconform.fuzz.engine import FuzzResult
from pamconform.fuzz.model import KINDS, Finding

REQUIREMENTS = {
    "grant": "Under fuzzing, the server grants only connections whose bytes are exactly "
             "user\\npassword\\n of a known-valid pair; any other grant is a FAIL with a "
             "shrunk reproducer.",
    "valid-denied": "Every exactly valid request is granted, however its bytes are split "
                    "into writes and paused.",
    "original-grant": "No reply is empty or non-numeric (the original module's atoi() reads "
                      "those as a grant).",
    "hang": "Every complete (or half-closed) request is answered within the timeout.",
    "refused": "The server keeps accepting connections whatever it was sent.",
    "memory": "The server's resident memory does not keep growing under fuzzing "
              "(sampled from /proc/PID/status when --pid is given).",
    "trailing-grant": "A valid request followed by more bytes in the same write should be "
                      "denied (bytes of later writes are not judged).",
}


def _noop(ctx: Any) -> None:
    return None


def fuzz_cases(protocol: str = "redirector") -> list[Case]:
    """The fuzz cases (not registered: they are graded from a fuzz run, not run alone)."""
    return [
        Case(case_id, rule, Severity(sev), title, REQUIREMENTS[kind], protocol, "server",
             _noop, "fuzz")
        for kind, (case_id, rule, sev, title) in KINDS.items()
    ]


def _finding_evidence(f: Finding, files: dict[str, Path], base: Path | None) -> dict[str, Any]:
    out = f.as_dict()
    path = files.get(f.file_name())
    if path is not None:
        inside = base is not None and path.is_relative_to(base)
        out["file"] = str(path.relative_to(base)) if inside and base else str(path)
    return out


def target_result(name: str, result: FuzzResult, *, strict: bool = False,
                  files: dict[str, Path] | None = None, base: Path | None = None) -> TargetResult:
    """Grade each fuzz case from the run's findings."""
    files = files or {}
    cfg = result.config
    target = TargetResult(name=name, kind="server", protocol=cfg.protocol)
    by_kind: dict[str, list[Finding]] = {}
    for f in result.findings:
        by_kind.setdefault(f.kind, []).append(f)
    kinds = list(KINDS)
    for case, kind in zip(fuzz_cases(cfg.protocol), kinds, strict=True):
        found = by_kind.get(kind, [])
        count = result.violations.get(kind, 0)
        evidence: dict[str, Any] = {"notes": [
            f"seed {cfg.seed}: {result.items} items, {result.execs} connections in "
            f"{result.fuzz_seconds:.1f} s ({result.execs_per_s:.0f}/s), stopped by {result.stopped}"
        ]}
        if found:
            evidence["findings"] = [_finding_evidence(f, files, base) for f in found]
            if result.examples.get(kind):
                evidence["more_examples"] = result.examples[kind]
            first = found[0]
            where = files.get(first.file_name())
            message = (f"{count} violation(s); reproducer {first.exec.payload[:80]!r}"
                       f"{' after the valid logins' if first.setup else ''}: expected "
                       f"{first.expected}; got {first.observed}"
                       + (f" ({where.name})" if where else ""))
            verdict = Verdict.FAIL if case.severity is Severity.MUST else effective(
                Verdict.NON_STRICT, strict=strict)
        elif kind == "memory" and cfg.pid is None:
            verdict, message = Verdict.SKIPPED, "no --pid given: memory not watched"
        elif kind == "memory" and not (result.memory or {}).get("samples"):
            verdict, message = Verdict.SKIPPED, f"could not read /proc/{cfg.pid}/status"
        else:
            verdict, message = Verdict.PASS, ""
        if kind == "memory" and result.memory:
            evidence["memory"] = result.memory
        target.results.append(CaseResult(case, verdict, message, result.fuzz_seconds, evidence))
    target.info["fuzz"] = result.summary()
    return target
