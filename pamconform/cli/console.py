"""Terminal output: progress while cases run, a summary table at the end.

Every line is redacted (no password or token the run knows reaches the terminal), and a
case's message is cut to :data:`MESSAGE_LIMIT` characters: the report keeps it whole.
"""

from __future__ import annotations

import re
import sys
from typing import Any, TextIO

from pamconform.core.redaction import Verbatim, redact
from pamconform.core.runner import CaseResult, TargetResult
from pamconform.core.verdicts import STOPPED, VERDICT_ORDER, Verdict

_COLOURS = {
    Verdict.PASS: "32",
    Verdict.NON_STRICT: "33",
    Verdict.INFORMATIONAL: "34",
    Verdict.SKIPPED: "90",
    Verdict.FAIL: "31",
    Verdict.ERROR: "35",
    Verdict.INTERRUPTED: "35;1",
    Verdict.NOT_RUN: "90",
}
#: Characters of a case's message shown on the console.
MESSAGE_LIMIT = 200
#: C0 and C1 control characters but tab and newline: a hostile target's bytes (a token
#: command's stderr, a server's reply in a message) must not move the cursor or erase
#: lines (messages are also cut to one line: :func:`cut`).
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` with control characters but tab and newline shown as ``\\xNN``."""
    return _CONTROLS.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def cut(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """``text`` on one line, at most ``limit`` characters (an ellipsis marks the cut)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "\u2026"


def time_line(timing: dict[str, Any]) -> str:
    """``time: 12.3 s wall (cases 10.1 s); suites: a 4.0 s, b 6.1 s``."""
    suites = ", ".join(f"{name} {t['wall_s']:.1f} s" for name, t in timing["suites"].items())
    return (f"time: {timing['wall_s']:.1f} s wall (cases {timing['cases_s']:.1f} s)"
            + (f"; suites: {suites}" if suites else ""))


class Console:
    """Writes progress lines and summaries; colour only on a terminal."""

    def __init__(self, out: TextIO | None = None, *, quiet: bool = False) -> None:
        self.out = out or sys.stdout
        self.quiet = quiet
        self.colour = self.out.isatty()
        #: put before every line (a lane of ``run --parallel`` names its target)
        self.tag = ""

    def verdict(self, verdict: Verdict) -> str:
        text = f"{verdict!s:<13}"
        return f"\033[{_COLOURS[verdict]}m{text}\033[0m" if self.colour else text

    @property
    def _lead(self) -> str:
        return f"{self.tag} | " if self.tag else ""

    def line(self, *parts: str) -> None:
        """Print the parts as one line, redacted but :class:`Verbatim` ones, and printable."""
        text = "".join(p if isinstance(p, Verbatim) else redact(p) for p in parts)
        print(self._lead + printable(text), file=self.out, flush=True)

    def progress(self, i: int, n: int, result: CaseResult) -> None:
        if self.quiet:
            return
        width = len(str(n))
        msg = (f"  {printable(cut(redact(result.message)))}"
               if result.verdict is not Verdict.PASS else "")
        # the case id is the suite's text, never a secret: not redacted (a password
        # fragment can match part of it); the verdict's colour is ours
        head = f"[{i:>{width}}/{n}] {self.verdict(result.verdict)} "
        print(f"{self._lead}{head}{result.case.id} ({result.duration_s:.2f} s){msg}",
              file=self.out, flush=True)

    def summary(self, target: TargetResult) -> None:
        # a stopped run's verdicts get a column only when the target has them
        order = [v for v in VERDICT_ORDER if v not in STOPPED or target.count(v)]
        counts = {v: target.count(v) for v in order}
        self.line()
        # the counts, the verdicts and the rule ids are pamconform's words and numbers, not
        # data: a password such as PASS must not blank the table (and so tell itself)
        self.line(f"{target.kind} {target.protocol} {target.name}: ", Verbatim(", ".join(
            f"{n} {v}" for v, n in counts.items() if n
        )))
        rules: dict[str, dict[Verdict, int]] = {}
        for r in target.results:
            rules.setdefault(r.case.rule, {}).setdefault(r.verdict, 0)
            rules[r.case.rule][r.verdict] += 1
        self.line(Verbatim(f"  {'rule':<8} " + " ".join(f"{v!s:>13}" for v in order)))
        for rule, by in rules.items():
            self.line(Verbatim(f"  {rule:<8} " + " ".join(f"{by.get(v, 0):>13}"
                                                         for v in order)))
        timing = target.info.get("timing")
        if timing:
            self.line(f"  {time_line(timing)}")
        bad = [r for r in target.results if r.verdict in (Verdict.FAIL, Verdict.ERROR)]
        for r in bad:
            self.line(Verbatim(f"  {r.verdict!s:<6} "), Verbatim(r.case.id),
                      f" [{r.case.rule}]: {cut(redact(r.message))}")
