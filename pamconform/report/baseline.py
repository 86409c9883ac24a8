"""Regression baselines: compare two ``index.json`` reports case by case.

Cases are matched by (target name, case id). A case that was PASS, NON-STRICT,
INFORMATIONAL or SKIPPED and is now FAIL or ERROR is *newly failing*: a regression.
INTERRUPTED and NOT-RUN (a run stopped by Ctrl-C or SIGTERM) are never one: they are
listed among the other verdict changes.
When each report holds exactly one target, the two are compared whatever their names
(``pamconform server`` names a target after its socket path, which may change).

    >>> old = {"targets": [{"name": "t", "cases": [{"id": "a", "verdict": "PASS",
    ...        "duration_s": 0.1}]}]}
    >>> new = {"targets": [{"name": "t", "cases": [{"id": "a", "verdict": "FAIL",
    ...        "duration_s": 0.1}]}]}
    >>> compare(old, new).regression
    True
"""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pamconform.core import jsonfile
from pamconform.core.errors import UsageError

#: Verdicts that count as "the target is fine here".
OK_VERDICTS = frozenset({"PASS", "NON-STRICT", "INFORMATIONAL", "SKIPPED"})
#: Verdicts that count as failing.
BAD_VERDICTS = frozenset({"FAIL", "ERROR"})
#: Verdicts of a run stopped by Ctrl-C or SIGTERM: no conclusion, never a regression.
STOPPED_VERDICTS = frozenset({"INTERRUPTED", "NOT-RUN"})
KNOWN_VERDICTS = OK_VERDICTS | BAD_VERDICTS | STOPPED_VERDICTS

#: The exit code of a comparison whose new report proves nothing (not stopped by a
#: signal, but with no finished verdicts to compare): bad input.
NO_CONCLUSION_EXIT = 2
#: Added or removed cases beyond this many are summarised per target.
LIST_LIMIT = 20
#: A timing change is reported when the ratio exceeds this ...
DEFAULT_TIME_RATIO = 2.0
#: ... and both durations exceed this many seconds.
DEFAULT_TIME_MIN_S = 0.5


class BaselineError(UsageError):
    """A report cannot be read or is not a pamconform index.json (one line)."""


@dataclass(frozen=True)
class Change:
    """One case whose verdict or timing differs between the two reports."""

    target: str
    case: str
    old: str | None  # verdict in the old report, None when added
    new: str | None  # verdict in the new report, None when removed
    old_s: float | None = None
    new_s: float | None = None
    message: str = ""  # the new report's message (or the old one's when removed)

    @property
    def ratio(self) -> float:
        """new duration / old duration (1.0 when unknown)."""
        if not self.old_s or self.new_s is None:
            return 1.0
        return self.new_s / self.old_s


@dataclass
class Diff:
    """What changed from an old report to a new one."""

    newly_failing: list[Change] = field(default_factory=list)
    newly_passing: list[Change] = field(default_factory=list)
    changed: list[Change] = field(default_factory=list)
    added: list[Change] = field(default_factory=list)
    removed: list[Change] = field(default_factory=list)
    slower: list[Change] = field(default_factory=list)
    faster: list[Change] = field(default_factory=list)
    #: Newly failing cases that are known findings (``--known-findings``): not counted.
    known_failing: list[Change] = field(default_factory=list)
    #: Pairs of target names compared under different names.
    renamed: list[tuple[str, str]] = field(default_factory=list)
    compared: int = 0
    time_ratio: float = DEFAULT_TIME_RATIO
    time_min_s: float = DEFAULT_TIME_MIN_S
    #: the new report's run was stopped (Ctrl-C, SIGTERM): the signal's name
    stopped: str | None = None

    @property
    def added_failing(self) -> list[Change]:
        """Cases only the new report has, and that FAIL or ERROR there."""
        return [c for c in self.added if c.new in BAD_VERDICTS]

    @property
    def regression(self) -> bool:
        """Whether any case in both reports is newly failing (a case new to the report
        that fails is a finding, not a regression: the suite grew, the target did not
        get worse)."""
        return bool(self.newly_failing)

    #: cases in the old report
    old_cases: int = 0

    @property
    def unfinished(self) -> list[Change]:
        """Cases the new report has without a finished verdict (INTERRUPTED, NOT-RUN)."""
        return [c for c in (*self.changed, *self.added) if c.new in STOPPED_VERDICTS]

    @property
    def conclusive(self) -> bool:
        """Whether "no regression" can be said: the new run was not stopped, finished
        every case it has, and shares cases with the old report (if that has any)."""
        return (self.stopped is None and not self.unfinished
                and (self.compared > 0 or self.old_cases == 0))

    @property
    def empty(self) -> bool:
        return not any((self.newly_failing, self.newly_passing, self.changed, self.added,
                        self.removed, self.slower, self.faster, self.known_failing))


# --------------------------------------------------------------------------- loading


def load_report(path: Path) -> dict[str, Any]:
    """Read and validate an index.json (or the report directory holding one)."""
    path = Path(path)
    if path.is_dir():
        path = path / "index.json"
    if not path.exists():
        raise BaselineError(f"{path}: no such report")
    try:
        data = jsonfile.load(path)
    except jsonfile.JsonFileError as exc:
        raise BaselineError(str(exc)) from None
    problem = report_problem(data)
    if problem:
        raise BaselineError(f"{path}: not a pamconform index.json: {problem}")
    return data  # type: ignore[no-any-return]


def report_problem(data: object) -> str | None:
    """Why data is not a usable index.json, or None."""
    if not isinstance(data, dict):
        return "the top level is not an object"
    targets = data.get("targets")
    if not isinstance(targets, list):
        return "no 'targets' list"
    names: set[str] = set()
    for i, target in enumerate(targets):
        if not isinstance(target, dict) or not isinstance(target.get("name"), str):
            return f"targets[{i}] has no name"
        if target["name"] in names:  # a second one would hide the first in a comparison
            return f"target {target['name']!r} twice"
        names.add(target["name"])
        cases = target.get("cases")
        if not isinstance(cases, list):
            return f"target {target['name']!r} has no 'cases' list"
        ids: set[str] = set()
        for j, case in enumerate(cases):
            if not isinstance(case, dict) or not isinstance(case.get("id"), str):
                return f"target {target['name']!r}: cases[{j}] has no id"
            if case["id"] in ids:
                return f"target {target['name']!r}: case {case['id']!r} twice"
            ids.add(case["id"])
            verdict = case.get("verdict")
            if not isinstance(verdict, str) or verdict not in KNOWN_VERDICTS:
                return f"case {case['id']!r}: unknown verdict {verdict!r}"
            if not isinstance(case.get("message", ""), str):
                return f"case {case['id']!r}: message is not a string"
            duration = case.get("duration_s", 0)
            if not isinstance(duration, int | float) or isinstance(duration, bool):
                return f"case {case['id']!r}: duration_s is not a number"
    return None


# --------------------------------------------------------------------------- comparing


def _cases(target: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in target["cases"]}


def compare(
    old: dict[str, Any],
    new: dict[str, Any],
    *,
    time_ratio: float = DEFAULT_TIME_RATIO,
    time_min_s: float = DEFAULT_TIME_MIN_S,
    known: frozenset[tuple[str, str]] = frozenset(),
) -> Diff:
    """Compare two index.json dicts (validate them with :func:`report_problem` first).
    ``known``: (target, case) pairs of known findings, whose new FAIL is not counted."""
    diff = Diff(time_ratio=time_ratio, time_min_s=time_min_s)
    interrupted = new.get("interrupted")
    diff.stopped = str(interrupted) if interrupted else None
    diff.old_cases = sum(len(t["cases"]) for t in old["targets"])
    old_targets = {t["name"]: t for t in old["targets"]}
    new_targets = {t["name"]: t for t in new["targets"]}
    pairs: list[tuple[str, dict[str, Any] | None, dict[str, Any] | None]] = []
    if (len(old_targets) == len(new_targets) == 1
            and set(old_targets) != set(new_targets)):
        (old_name, o), (new_name, n) = next(iter(old_targets.items())), next(
            iter(new_targets.items()))
        diff.renamed.append((old_name, new_name))
        pairs.append((new_name, o, n))
    else:
        names = list(old_targets) + [n for n in new_targets if n not in old_targets]
        pairs = [(name, old_targets.get(name), new_targets.get(name)) for name in names]
    for name, o, n in pairs:
        ocases = _cases(o) if o else {}
        ncases = _cases(n) if n else {}
        for cid in list(ocases) + [c for c in ncases if c not in ocases]:
            _compare_case(diff, name, ocases.get(cid), ncases.get(cid))
    if known:
        diff.known_failing = [c for c in diff.newly_failing if (c.target, c.case) in known
                              and c.new == "FAIL"]
        diff.newly_failing = [c for c in diff.newly_failing if c not in diff.known_failing]
        diff.added = [c for c in diff.added if not ((c.target, c.case) in known
                                                    and c.new == "FAIL")]
    return diff


def _compare_case(diff: Diff, target: str, o: dict[str, Any] | None,
                  n: dict[str, Any] | None) -> None:
    if o is None and n is None:
        return
    if o is None:
        assert n is not None
        diff.added.append(Change(target, n["id"], None, n["verdict"], None,
                                 float(n.get("duration_s", 0)), n.get("message", "")))
        return
    if n is None:
        diff.removed.append(Change(target, o["id"], o["verdict"], None,
                                   float(o.get("duration_s", 0)), None, o.get("message", "")))
        return
    diff.compared += 1
    change = Change(target, n["id"], o["verdict"], n["verdict"], float(o.get("duration_s", 0)),
                    float(n.get("duration_s", 0)), n.get("message", ""))
    ov, nv = change.old, change.new
    if ov in OK_VERDICTS and nv in BAD_VERDICTS:
        diff.newly_failing.append(change)
    elif ov in BAD_VERDICTS and nv in OK_VERDICTS - {"SKIPPED"}:
        diff.newly_passing.append(change)
    elif ov != nv:
        diff.changed.append(change)
    assert change.old_s is not None and change.new_s is not None
    if ov in STOPPED_VERDICTS or nv in STOPPED_VERDICTS or "ERROR" in (ov, nv):
        return  # a stopped or broken case's time says nothing of the target's speed
    if min(change.old_s, change.new_s) > diff.time_min_s:
        if change.new_s > change.old_s * diff.time_ratio:
            diff.slower.append(change)
        elif change.old_s > change.new_s * diff.time_ratio:
            diff.faster.append(change)


# --------------------------------------------------------------------------- printing


def _describe(report: dict[str, Any]) -> str:
    n = sum(len(t["cases"]) for t in report["targets"])
    started = report.get("started", "?")
    return f"{len(report['targets'])} target(s), {n} cases, started {started}"


def _short(text: str, limit: int = 110) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def format_diff(diff: Diff) -> list[str]:
    """The diff as readable lines (no colour)."""
    lines: list[str] = []
    for old_name, new_name in diff.renamed:
        lines.append(f"(one target in each report: comparing {old_name!r} with {new_name!r})")

    def section(title: str, changes: list[Change], show: str) -> None:
        if not changes:
            return
        lines.append(f"{title} ({len(changes)}):")
        if show in ("added", "removed") and len(changes) > LIST_LIMIT:
            by_target: dict[str, Counter[str]] = {}
            for c in changes:
                verdict = (c.new if show == "added" else c.old) or "?"
                by_target.setdefault(c.target, Counter())[verdict] += 1
            for target, counts in by_target.items():
                what = ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))
                lines.append(f"  {target}: {sum(counts.values())} cases "
                             f"({'now' if show == 'added' else 'were'} {what})")
            return
        width = max(len(c.case) for c in changes)
        twidth = max(len(c.target) for c in changes)
        for c in changes:
            if show == "verdict":
                detail = f"{c.old} -> {c.new}"
                if c.message and c.new in BAD_VERDICTS:
                    detail += f"  {_short(c.message)}"
            elif show == "added":
                detail = f"{c.new}" + ("  (new case, failing)" if c.new in BAD_VERDICTS else "")
            elif show == "removed":
                detail = f"was {c.old}"
            else:
                slower = c.ratio > 1
                factor = c.ratio if slower else 1 / c.ratio
                detail = (f"{c.old_s:.2f} s -> {c.new_s:.2f} s "
                          f"({factor:.1f}x {'slower' if slower else 'faster'})")
            lines.append(f"  {c.target:<{twidth}}  {c.case:<{width}}  {detail}")

    section("NEWLY FAILING", diff.newly_failing, "verdict")
    section("newly failing, known findings (not counted)", diff.known_failing, "verdict")
    section("newly passing", diff.newly_passing, "verdict")
    section("other verdict changes", diff.changed, "verdict")
    section("cases added", diff.added, "added")
    section("cases removed", diff.removed, "removed")
    rule = f"beyond {diff.time_ratio:g}x, both over {diff.time_min_s:g} s"
    section(f"slower ({rule})", diff.slower, "time")
    section(f"faster ({rule})", diff.faster, "time")
    counts = (f"{len(diff.newly_failing)} newly failing, {len(diff.newly_passing)} newly "
              f"passing, {len(diff.changed)} other changes, {len(diff.added)} added, "
              f"{len(diff.removed)} removed, {len(diff.slower)} slower, "
              f"{len(diff.faster)} faster ({diff.compared} cases in both)")
    if diff.empty:
        lines.append(f"no changes ({diff.compared} cases in both)")
    else:
        lines.append(counts)
    if diff.regression:
        lines.append("REGRESSION: some cases newly fail")
    elif not diff.conclusive:
        if diff.stopped:
            why = f"the new run was stopped ({diff.stopped})"
        elif diff.unfinished:
            why = f"{len(diff.unfinished)} case(s) of the new report have no finished verdict"
        else:
            why = "the two reports share no case"
        lines.append(f"NO CONCLUSION: {why}")
    elif diff.added_failing:
        lines.append(f"no regression among the {diff.compared} cases in both; "
                     f"{len(diff.added_failing)} case(s) new to the report fail (findings, "
                     "not regressions)")
    else:
        lines.append("no regression")
    return lines


def exit_code(diff: Diff) -> int:
    """1 on a regression; when nothing else can be concluded, 128 + the signal that
    stopped the new run (as ``pamconform merge`` exits), or 2 (a report without finished
    verdicts to compare); else 0."""
    if diff.regression:
        return 1
    if diff.conclusive:
        return 0
    if diff.stopped in ("SIGINT", "SIGTERM"):
        return 128 + int(getattr(signal, diff.stopped))
    return NO_CONCLUSION_EXIT


def diff_lines(diff: Diff, old: dict[str, Any] | None = None,
               new: dict[str, Any] | None = None, *, old_label: str = "baseline",
               new_label: str = "this run") -> list[str]:
    """A header naming both reports, then the diff (lines for the caller to print)."""
    lines = []
    if old is not None:
        lines.append(f"{old_label}: {_describe(old)}")
    if new is not None:
        lines.append(f"{new_label}: {_describe(new)}")
    return lines + format_diff(diff)


def apply_baseline(baseline_path: Path, new_report: dict[str, Any],
                   say: Callable[[str], object],
                   known: frozenset[tuple[str, str]] = frozenset()) -> int:
    """Compare a finished run with ``--baseline OLD/index.json``; hand the diff to ``say``
    line by line.

    Returns 1 on a regression (a case newly FAIL or ERROR), 0 otherwise, and 2 (after one
    line) when the baseline cannot be read.
    """
    try:
        old = load_report(Path(baseline_path))
    except BaselineError as exc:
        say(f"pamconform: baseline: {exc}")
        return 2
    problem = report_problem(new_report)
    if problem:  # never expected: the run's own report
        say(f"pamconform: baseline: this run's report is malformed: {problem}")
        return 2
    diff = compare(old, new_report, known=known)
    say(f"\n== compared with the baseline {baseline_path}")
    for line in diff_lines(diff, old, new_report):
        say(line)
    return 1 if diff.regression else 0  # a stopped run exits with its signal's code
