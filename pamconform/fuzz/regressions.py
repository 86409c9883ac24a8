"""Findings as regression cases: a saved finding file becomes a MUST case of the suite.

``suites/redirector_server/fuzz_regressions.py`` calls :func:`register_directory` on
its ``regressions/`` directory; ``pamconform fuzz server --save-regressions DIR``
writes the files (the same JSON as a finding: passwords as references to the logins,
resolved from the target's credentials when the case runs).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from pamconform.core.context import CaseContext, ServerTarget
from pamconform.core.outcome import Fail, Skip
from pamconform.core.redaction import MissingLogin, render_template
from pamconform.core.verdicts import Severity
from pamconform.fuzz import finding_files
from pamconform.fuzz.model import KINDS, Finding
from pamconform.fuzz.oracle import Oracle
from pamconform.fuzz.replay import attempt
from pamconform.protocols.redirector.client import request

#: Kinds that make sense as a replayed case (memory needs a long run and a pid).
REGRESSION_KINDS = ("grant", "valid-denied", "original-grant", "hang", "refused")


def case_id(finding: Finding) -> str:
    return f"redir.server.regression-{finding.short_hash()[:8]}"


def file_case_id(path: Path, data: dict[str, Any]) -> str:
    """The case id of a saved file: the hash in its name (``<kind>-<hash>.json``), which
    is the finding's :func:`case_id` hash; else a hash of what the file sends."""
    tail = path.stem.rpartition("-")[2]
    if len(tail) >= 8 and all(c in "0123456789abcdef" for c in tail):
        return f"redir.server.regression-{tail[:8]}"
    blob = json.dumps([data.get(k) for k in (*finding_files.BYTE_LISTS, "kind")]).encode()
    return f"redir.server.regression-{hashlib.sha256(blob).hexdigest()[:8]}"


def save(finding: Finding, directory: Path) -> Path | None:
    """Write a finding as a regression file, or None if its kind cannot be one."""
    if finding.kind not in REGRESSION_KINDS:
        return None
    return finding.save(directory)


def check(data: dict[str, Any], name: str, ctx: CaseContext) -> None:
    """Replay the saved finding against the target; FAIL if it still reproduces."""
    t: ServerTarget = ctx.target
    try:
        finding = Finding.from_dict(finding_files.from_file(data, t.credentials))
    except MissingLogin:
        users = ", ".join(finding_files.logins_needed(data))
        raise Skip(f"{name} was recorded with logins the target was not given ({users})"
                   ) from None
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


def _sent(data: dict[str, Any], limit: int = 60) -> str:
    """What a saved finding sends, escaped, passwords as markers."""
    chunks = data.get("chunks_hex") or []
    shown = "".join(render_template(c) for c in chunks if isinstance(c, str | list))
    return shown if len(shown) <= limit else shown[:limit] + "..."


def register_directory(directory: Path, case: CaseDecorator) -> list[str]:
    """Register one MUST case per regression file in directory; return their ids.

    Files are read as saved; their password references are resolved when a case runs,
    from the target's credentials.
    """
    ids = []
    for path in sorted(directory.glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: cannot read a finding: {exc}") from None
        if not isinstance(data, dict) or data.get("kind") not in REGRESSION_KINDS:
            continue
        cid = file_case_id(path, data)
        after = " after the valid logins" if data.get("setup_hex") else ""
        case(cid, rule=KINDS[data["kind"]][1], severity=Severity.MUST,
             title=f"Fuzz regression: {data['kind']} ({path.name})",
             requirement=f"Sent b'{_sent(data)}'{after}, the server gives "
             f"{data.get('expected', '')} (it once gave {data.get('observed', '')}).",
             )(partial(check, data, path.name))
        ids.append(cid)
    return ids
