"""The case registry: a case is a function plus the spec line it checks.

Suites register cases with a factory bound to their protocol (its registry name, e.g.
``redirector``) and target kind::

    case = case_factory(protocol=PROTOCOL.name, kind="server")

    @case("redir.server.grant-valid", rule="R-S1", severity=MUST,
          title="Valid credentials are granted",
          requirement="The server replies exactly 0 for a known user's right password.")
    def grant_valid(ctx): ...

Ids are explicit and stable: never derived from names or positions.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pamconform.core.verdicts import Severity

CaseFunc = Callable[[Any], None]

_ID = re.compile(r"[a-z0-9]+(?:[.-][a-z0-9]+)*")


@dataclass(frozen=True)
class Case:
    """One conformance case: a spec line with the code that checks it."""

    id: str
    rule: str
    severity: Severity
    title: str
    requirement: str
    protocol: str
    kind: str
    func: CaseFunc
    suite: str

    def as_dict(self) -> dict[str, str]:
        return {
            "id": self.id,
            "rule": self.rule,
            "severity": str(self.severity),
            "title": self.title,
            "requirement": self.requirement,
            "suite": self.suite,
        }


_REGISTRY: dict[str, Case] = {}


def register(case: Case) -> Case:
    """Add a case; a second case with the same id from another place is an error."""
    if not _ID.fullmatch(case.id):
        raise ValueError(f"case id {case.id!r} must be lower-case words joined by . or -")
    old = _REGISTRY.get(case.id)
    if old is not None and old.suite != case.suite:
        raise ValueError(f"duplicate case id {case.id!r} ({old.suite} and {case.suite})")
    _REGISTRY[case.id] = case
    return case


def case_factory(protocol: str, kind: str) -> Callable[..., Callable[[CaseFunc], CaseFunc]]:
    """A decorator factory that registers cases of one protocol and target kind.

    Call it at the top of a suite file: the file's name becomes the cases' suite.
    """
    module = sys._getframe(1).f_globals.get("__name__", "?")
    suite = module.split(".", 1)[1] if module.startswith("pamconform_suite.") else module

    def case(
        case_id: str,
        *,
        rule: str,
        severity: Severity,
        title: str,
        requirement: str,
    ) -> Callable[[CaseFunc], CaseFunc]:
        def decorate(func: CaseFunc) -> CaseFunc:
            register(
                Case(case_id, rule, severity, title, requirement, protocol, kind, func, suite)
            )
            return func

        return decorate

    return case


def all_cases(*, protocol: str | None = None, kind: str | None = None) -> list[Case]:
    """Registered cases, filtered, in rule then id order (stable)."""
    cases = [
        c
        for c in _REGISTRY.values()
        if (protocol is None or c.protocol == protocol) and (kind is None or c.kind == kind)
    ]
    return sorted(cases, key=lambda c: (_rule_key(c.rule), c.id))


def _rule_key(rule: str) -> tuple[str, int]:
    match = re.fullmatch(r"(.*?)(\d+)", rule)
    return (match.group(1), int(match.group(2))) if match else (rule, 0)
