"""Terminal output: progress while cases run, a summary table at the end."""

from __future__ import annotations

import sys
from typing import TextIO

from pamconform.runner import CaseResult, TargetResult
from pamconform.verdicts import STOPPED, VERDICT_ORDER, Verdict

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


class Console:
    """Writes progress lines and summaries; colour only on a terminal."""

    def __init__(self, out: TextIO | None = None, *, quiet: bool = False) -> None:
        self.out = out or sys.stdout
        self.quiet = quiet
        self.colour = self.out.isatty()

    def verdict(self, verdict: Verdict) -> str:
        text = f"{verdict!s:<13}"
        return f"\033[{_COLOURS[verdict]}m{text}\033[0m" if self.colour else text

    def line(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def progress(self, i: int, n: int, result: CaseResult) -> None:
        if self.quiet:
            return
        width = len(str(n))
        msg = f"  {result.message}" if result.verdict is not Verdict.PASS else ""
        if len(msg) > 160:
            msg = msg[:157] + "..."
        self.line(
            f"[{i:>{width}}/{n}] {self.verdict(result.verdict)} {result.case.id} "
            f"({result.duration_s:.2f} s){msg}"
        )

    def summary(self, target: TargetResult) -> None:
        # a stopped run's verdicts get a column only when the target has them
        order = [v for v in VERDICT_ORDER if v not in STOPPED or target.count(v)]
        counts = {v: target.count(v) for v in order}
        self.line()
        self.line(f"{target.kind} {target.protocol} {target.name}: " + ", ".join(
            f"{n} {v}" for v, n in counts.items() if n
        ))
        rules: dict[str, dict[Verdict, int]] = {}
        for r in target.results:
            rules.setdefault(r.case.rule, {}).setdefault(r.verdict, 0)
            rules[r.case.rule][r.verdict] += 1
        self.line(f"  {'rule':<8} " + " ".join(f"{v!s:>13}" for v in order))
        for rule, by in rules.items():
            self.line(f"  {rule:<8} " + " ".join(f"{by.get(v, 0):>13}" for v in order))
        bad = [r for r in target.results if r.verdict in (Verdict.FAIL, Verdict.ERROR)]
        for r in bad:
            self.line(f"  {r.verdict!s:<6} {r.case.id} [{r.case.rule}]: {r.message}")
