"""The path an evaluation took: one :class:`Step` per chain entry, and its :class:`Outcome`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pamconform.model import codes
from pamconform.model.parser import Handler

#: Impressions, as Linux-PAM names its running verdict.
UNDEF, POSITIVE, NEGATIVE = 0, 1, -1
IMPRESSION_NAMES = {UNDEF: "undecided", POSITIVE: "positive", NEGATIVE: "negative"}


@dataclass
class Step:
    """What happened at one chain entry."""

    where: str
    text: str
    level: int
    ran: bool
    code: int | None = None
    cached: int | None = None
    action: str = ""
    effect: str = ""
    impression: int = UNDEF
    status: int = codes.PERM_DENIED
    handler: Handler | None = field(default=None, repr=False)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"line": self.where, "text": self.text, "ran": self.ran}
        if self.code is not None:
            out["returned"] = codes.name(self.code)
        if self.cached is not None:
            out["cached"] = codes.name(self.cached)
        out.update(action=self.action, effect=self.effect,
                   impression=IMPRESSION_NAMES.get(self.impression, str(self.impression)),
                   status=codes.name(self.status))
        return out

    def render(self, width: int = 52) -> str:
        indent = "  " * self.level
        text = (indent + self.text)
        text = text if len(text) <= width else text[: width - 3] + "..."
        got = codes.name(self.code) if self.ran and self.code is not None else "-"
        if self.cached is not None:
            got += f" (chain as {codes.name(self.cached)})"
        return f"{self.where:<18} {text:<{width}} {got:<24} {self.action:<8} {self.effect}"


@dataclass
class Outcome:
    """The result of one primitive (``pam_authenticate`` ...) and the path to it."""

    primitive: str
    code: int | None
    steps: list[Step] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return codes.name(self.code) if self.code is not None else "crash"

    @property
    def granted(self) -> bool:
        return self.code == codes.SUCCESS

    def ran(self) -> list[Step]:
        return [s for s in self.steps if s.ran]

    def render(self) -> str:
        lines = [f"{self.primitive}: {self.name}"]
        lines += ["  " + s.render() for s in self.steps]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {"primitive": self.primitive, "result": self.name,
                "steps": [s.as_dict() for s in self.steps], "notes": list(self.notes)}


@dataclass
class Run:
    """A whole transaction as ``pamdrive`` reports it: pam_start, then each step."""

    start: int
    outcomes: list[Outcome] = field(default_factory=list)
    crash: str | None = None

    def results(self) -> list[tuple[str, str]]:
        """``[(step, PAM_NAME), ...]``, the shape compared against pamdrive."""
        return [(o.primitive, o.name) for o in self.outcomes]

    def render(self) -> str:
        if self.crash:
            return f"libpam crashes: {self.crash}"
        if self.start != codes.SUCCESS:
            return f"pam_start: {codes.name(self.start)}"
        return "\n".join(o.render() for o in self.outcomes)


def pamdrive_results(report: dict[str, Any] | None,
                     steps: Iterable[str] = ()) -> tuple[str, list[tuple[str, str]]]:
    """``(pam_start name, [(step, name), ...])`` from a pamdrive JSON report."""
    if not report:
        return "no report", []
    start = str(report.get("pam_start_name", "?"))
    return start, [(str(s["step"]), str(s["name"])) for s in report.get("steps", [])]
