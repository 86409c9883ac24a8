"""Findings as regression cases: a saved finding file becomes a MUST case of a suite.

A suite calls :func:`register_directory` on its ``regressions/`` directory (e.g.
``suites/redirector_server/fuzz_regressions.py``); ``pamconform fuzz server
--save-regressions DIR`` writes the files (the same JSON as a finding: passwords as
references to the logins, resolved from the target's credentials when the case runs).
Each file names its protocol, whose fuzz model's ``regressions`` replays it and names
its case (``prefix`` + the hash in the file's name).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pamconform.core import jsonfile
from pamconform.core.verdicts import Severity
from pamconform.fuzz.engine import model_for
from pamconform.fuzz.interface import Finding, Regressions


def _regressions(protocol: str) -> Regressions:
    support = model_for(protocol).regressions
    if support is None:
        raise ValueError(f"protocol {protocol!r} has no fuzz regressions")
    return support


def case_id(finding: Finding) -> str:
    return f"{_regressions(finding.protocol).prefix}{finding.short_hash()[:8]}"


def file_case_id(path: Path, data: dict[str, Any], support: Regressions) -> str:
    """The case id of a saved file: the hash in its name (``<kind>-<hash>.json``), which
    is the finding's :func:`case_id` hash; else a hash of what the file sends."""
    tail = path.stem.rpartition("-")[2]
    if len(tail) >= 8 and all(c in "0123456789abcdef" for c in tail):
        return f"{support.prefix}{tail[:8]}"
    return f"{support.prefix}{support.file_hash(data)[:8]}"


def save(finding: Finding, directory: Path) -> Path | None:
    """Write a finding as a regression file, or None if its kind cannot be one."""
    model = model_for(finding.protocol)
    kind = model.kinds.get(finding.kind)
    if model.regressions is None or kind is None or not kind.regression:
        return None
    return finding.save(directory)


CaseDecorator = Callable[..., Callable[[Callable[[Any], None]], Callable[[Any], None]]]


def register_directory(directory: Path, case: CaseDecorator,
                       protocol: str | None = None) -> list[str]:
    """Register one MUST case per regression file in directory; return their ids.

    A file's protocol is its own ``protocol`` field (else ``protocol``). Files are read
    as saved; their password references are resolved when a case runs, from the
    target's credentials.
    """
    ids = []
    for path in sorted(directory.glob("*.json")):
        try:
            data = jsonfile.load(path)
        except jsonfile.JsonFileError as exc:
            raise ValueError(f"cannot read a finding: {exc}") from None
        if not isinstance(data, dict):
            continue
        name = data.get("protocol", protocol)
        if not isinstance(name, str):
            raise ValueError(f"{path}: names no protocol")
        model = model_for(name)
        kind = model.kinds.get(str(data.get("kind")))
        support = model.regressions
        if support is None or kind is None or not kind.regression:
            continue
        cid = file_case_id(path, data, support)
        case(cid, rule=kind.rule, severity=Severity.MUST,
             title=f"Fuzz regression: {data['kind']} ({path.name})",
             requirement=support.requirement(data),
             )(_body(support, data, path.name))
        ids.append(cid)
    return ids


def _body(support: Regressions, data: dict[str, Any], name: str) -> Callable[[Any], None]:
    def check(ctx: Any) -> None:
        support.check(data, name, ctx)

    return check
