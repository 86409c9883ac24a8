"""The case registry: a case is a function plus the spec line it checks.

Suites register cases with a factory bound to their protocol (its registry name, e.g.
``redirector``) and target kind::

    case = case_factory(protocol=PROTOCOL.name, kind="server")

    @case("redir.server.grant-valid", rule="R-S1", severity=MUST,
          title="Valid credentials are granted",
          requirement="The server replies exactly 0 for a known user's right password.")
    def grant_valid(ctx): ...

Ids are explicit and stable: never derived from names or positions.

A case that must not run beside certain others names what it needs alone with
``exclusive=`` (see :data:`RESOURCES`): ``exclusive=("timing",)`` runs with no other case
at once, ``exclusive=("user-state",)`` never beside another case that names
``user-state``. Cases that name nothing run concurrently under ``--jobs``.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pamconform.core.verdicts import Severity

CaseFunc = Callable[[Any], None]

_ID = re.compile(r"[a-z0-9]+(?:[.-][a-z0-9]+)*")

#: What a case may need exclusively (``exclusive=``), and what each name means. A case
#: naming one of ALONE runs with no other case at once; two cases naming the same other
#: resource never run at the same time. :func:`add_resource` adds a name.
RESOURCES: dict[str, str] = {
    "target": "the whole target: no other case runs at the same time",
    "timing": "a timing measurement: no other case runs at the same time (their load "
              "would skew it)",
    "user-state": "the server's per-user state for the target's logins (failure counters, "
                  "lock-outs, one-time tokens)",
    "first-login": "wrong passwords for the first login's user: cases sending them run one "
                   "at a time, so a lock-out after 5 failures in a row (a policy the suite "
                   "allows for, docs/server.md#lock-outs) never sees two cases' wrong "
                   "passwords interleaved",
    "server-process": "the server process itself (a case that may stop, crash or restart it)",
    "lab-server": "the auth server behind the module's socket in the lab (started, stopped "
                  "or replaced by the case)",
    "lab-twin": "the target's second lab container (same image, same module file), where "
                "cases wait out the module's bound beside the cases on the first one "
                "(nslcd N-M2)",
    "scenario": "the lab's scenario server and its current scenario (direct driver)",
    "sshd": "the lab's sshd and its log",
    "valgrind": "runs under valgrind (CPU-heavy, bounded by six times the hang bound): at "
                "most as many such cases at once as SLOTS says (one per CPU, at most two), "
                "so others' load cannot make it look hung",
    "idle-clients": "clients the case keeps idle or stalled on the server (a server that "
                    "serves one client at a time would hold up other cases): runs only "
                    "beside cases that name it too. A case whose verdict is whether it is "
                    "served promptly names target instead (others' idle clients would "
                    "hold it up)",
}
#: The resources that mean "run alone".
ALONE = frozenset({"target", "timing"})
#: Groups: a case naming one runs only beside cases naming the same group.
GROUPS = frozenset({"idle-clients"})
#: Resources held by up to this many cases at once (all others: one). ``valgrind``: one
#: per CPU, at most two, so each run has a CPU of its own and e2e cases still get one.
SLOTS: dict[str, int] = {"valgrind": max(1, min(2, os.cpu_count() or 1))}


def add_resource(name: str, meaning: str) -> None:
    """Let cases name ``name`` in ``exclusive=`` (custom suites with their own resources)."""
    if not _ID.fullmatch(name):
        raise ValueError(f"resource name {name!r} must be lower-case words joined by . or -")
    RESOURCES.setdefault(name, meaning)


def _resources(exclusive: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    names = (exclusive,) if isinstance(exclusive, str) else tuple(exclusive)
    unknown = [n for n in names if n not in RESOURCES]
    if unknown:
        raise ValueError(f"exclusive={unknown[0]!r}: not a known resource (known: "
                         f"{', '.join(RESOURCES)}; add_resource() adds one)")
    return tuple(dict.fromkeys(names))


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
    #: what the case needs alone (names from RESOURCES); empty: runs beside any case
    exclusive: tuple[str, ...] = ()

    @property
    def alone(self) -> bool:
        """Whether no other case may run at the same time."""
        return not ALONE.isdisjoint(self.exclusive)

    def conflicts(self, other: Case) -> bool:
        """Whether this case and ``other`` must not run at the same time."""
        if self.alone or other.alone:
            return True
        mine, theirs = set(self.exclusive), set(other.exclusive)
        if mine & GROUPS != theirs & GROUPS:
            return True
        shared = SLOTS.keys() | GROUPS  # slots are counted by the runner, not paired
        return not (mine - shared).isdisjoint(theirs - shared)

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


def case_factory(protocol: str, kind: str, *,
                 exclusive: str | tuple[str, ...] | list[str] = ()
                 ) -> Callable[..., Callable[[CaseFunc], CaseFunc]]:
    """A decorator factory that registers cases of one protocol and target kind.

    Call it at the top of a suite file: the file's name becomes the cases' suite.
    ``exclusive`` here is what every case of the file needs alone (each case may add
    more with its own ``exclusive=``).
    """
    shared = _resources(exclusive)
    module = sys._getframe(1).f_globals.get("__name__", "?")
    suite = module.split(".", 1)[1] if module.startswith("pamconform_suite.") else module

    def case(
        case_id: str,
        *,
        rule: str,
        severity: Severity,
        title: str,
        requirement: str,
        exclusive: str | tuple[str, ...] | list[str] = (),
    ) -> Callable[[CaseFunc], CaseFunc]:
        needs = tuple(dict.fromkeys(shared + _resources(exclusive)))

        def decorate(func: CaseFunc) -> CaseFunc:
            register(
                Case(case_id, rule, severity, title, requirement, protocol, kind, func, suite,
                     needs)
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
