"""Findings as regression cases: a saved finding file becomes a MUST case of the suite.

``suites/redirector_server/fuzz_regressions.py`` calls :func:`register_directory` on
its ``regressions/`` directory; ``pamconform fuzz server --save-regressions DIR``
writes the files (the same JSON as a finding).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from pamconform.context import CaseContext, ServerTarget
from pamconform.fuzz.model import Finding
from pamconform.fuzz.oracle import Oracle
from pamconform.fuzz.replay import attempt
from pamconform.outcome import Fail, Skip
from pamconform.redirector.client import request
from pamconform.verdicts import Severity

#: Kinds that make sense as a replayed case (memory needs a long run and a pid).
REGRESSION_KINDS = ("grant", "valid-denied", "original-grant", "hang", "refused")


def case_id(finding: Finding) -> str:
    return f"redir.server.regression-{finding.short_hash()[:8]}"


def save(finding: Finding, directory: Path) -> Path | None:
    """Write a finding as a regression file, or None if its kind cannot be one."""
    if finding.kind not in REGRESSION_KINDS:
        return None
    return finding.save(directory)


def check(finding: Finding, name: str, ctx: CaseContext) -> None:
    """Replay the finding against the target; FAIL if it still reproduces."""
    t: ServerTarget = ctx.target
    valid = {request(u, p) for u, p in t.credentials}
    missing = [s for s in finding.setup if s not in valid]
    if finding.kind == "valid-denied" and finding.exec.payload not in valid:
        missing.append(finding.exec.payload)
    if missing:
        users = ", ".join(sorted({m.split(b"\n", 1)[0].decode("utf-8", "replace")
                                  for m in missing}))
        raise Skip(f"{name} was recorded with logins the target was not given ({users})")
    ctx.note(f"replaying {name}: {finding.kind} found with seed {finding.seed} "
             f"({finding.exec.generator or 'corpus'})")
    got = attempt(str(t.socket), finding.kind, finding.exec, Oracle(t.credentials), t.timeout,
                  setup=finding.setup, concurrent=finding.concurrent, log=ctx.log)
    if got.reproduces:
        raise Fail(finding.expected, got.text, f"fuzz regression {name} reproduces")


CaseDecorator = Callable[..., Callable[[Callable[[Any], None]], Callable[[Any], None]]]


def register_directory(directory: Path, case: CaseDecorator) -> list[str]:
    """Register one MUST case per regression file in directory; return their ids."""
    ids = []
    for path in sorted(directory.glob("*.json")):
        finding = Finding.load(path)
        if finding.kind not in REGRESSION_KINDS:
            continue
        cid = case_id(finding)
        shown = finding.exec.payload[:60]
        after = " after the valid logins" if finding.setup else ""
        case(cid, rule=finding.rule, severity=Severity.MUST,
             title=f"Fuzz regression: {finding.kind} ({path.name})",
             requirement=f"Sent {shown!r}{after}, the server gives {finding.expected} "
             f"(it once gave {finding.observed}).")(partial(check, finding, path.name))
        ids.append(cid)
    return ids
