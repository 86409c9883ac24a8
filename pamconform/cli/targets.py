"""The targets of one run, as steps: plan them, shard them, check them one by one.

``server``, ``module`` and ``run`` all turn their input into a list of :class:`Step`
(one target each, with its selected cases); :func:`run_steps` checks them in order,
measures what each cost (wall time, suites) and writes the one report.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pamconform import report
from pamconform.cli import common
from pamconform.cli.console import Console
from pamconform.core import gate as lane_gate
from pamconform.core import jsonfile
from pamconform.core import shard as sharding
from pamconform.core.errors import HarnessError, UsageError
from pamconform.core.interrupts import Interrupted
from pamconform.core.registry import Case
from pamconform.core.runner import TargetResult
from pamconform.report.timing import target_timing

#: Static estimates for ``--shard`` without ``--shard-weights``: a case's seconds and a
#: target's set-up on each shard that gets one of its cases, by whether it needs the lab.
CASE_ESTIMATE_S = {False: 0.4, True: 2.0}
SETUP_ESTIMATE_S = {False: 0.5, True: 30.0}


@dataclass
class Step:
    """One target of the run: what it is, its cases, and how to check them."""

    name: str
    kind: str
    protocol: str
    cases: list[Case]
    #: checks the given cases (the step's, or the part a shard keeps)
    check: Callable[[list[Case]], TargetResult]
    #: for a lab target: which lab, in "the ... lab could not run"
    lab: str | None = None
    #: whether it starts containers (a set-up cost for --shard)
    in_lab: bool = False

    @property
    def planned(self) -> common.Planned:
        return (self.name, self.kind, self.protocol, self.cases)


def add_shard_options(p: argparse.ArgumentParser) -> None:
    """``--shard K/N`` and ``--shard-weights REPORT``."""
    p.add_argument("--shard", type=sharding.parse, metavar="K/N",
                   help="check only part K of N of the selected (target, case) pairs: the "
                   "same command with 1/N ... N/N checks each pair once (join the reports "
                   "with pamconform merge)")
    p.add_argument("--shard-weights", type=Path, metavar="REPORT",
                   help="an earlier index.json whose case durations balance the shards "
                   "(default: a static estimate)")


def unique_names(steps: list[Step]) -> list[Step]:
    """``steps``, or a usage error when two targets share a name (the report keys on it)."""
    seen: set[str] = set()
    for step in steps:
        if step.name in seen:
            raise UsageError(f"two targets are named {step.name!r}: give each its own name "
                             "(--name, or the project file's target names)")
        seen.add(step.name)
    return steps


def shard_steps(steps: list[Step], args: argparse.Namespace
                ) -> tuple[list[Step], dict[str, Any] | None]:
    """The steps with only this shard's cases (steps left with none dropped), and the
    report's ``shard`` record; the steps unchanged and None without ``--shard``."""
    part = getattr(args, "shard", None)
    if part is None:
        return steps, None
    unique_names(steps)
    plan = {s.name: [c.id for c in s.cases] for s in steps}
    weights = case_weights(getattr(args, "shard_weights", None), steps)
    setup = {s.name: SETUP_ESTIMATE_S[s.in_lab] for s in steps}
    where = sharding.assign([(s.name, c.id) for s in steps for c in s.cases], part.count,
                            weights=weights, setup=setup)
    kept = []
    for step in steps:
        cases = [c for c in step.cases if where[(step.name, c.id)] == part.index]
        if cases:
            step.cases = cases
            kept.append(step)
    split = {name: [str(where[(name, case)]) for case in ids] for name, ids in plan.items()}
    record = {"part": str(part), "index": part.index, "count": part.count,
              "plan_sha256": sharding.digest(plan), "plan": plan,
              "split_sha256": sharding.digest(split)}
    return kept, record


def case_weights(path: Path | None, steps: list[Step]) -> dict[sharding.Pair, float]:
    """Each (target, case) pair's expected seconds: from the report at ``path`` (a
    directory or its index.json) where it has the pair, else the static estimate."""
    weights = {(s.name, c.id): CASE_ESTIMATE_S[s.in_lab] for s in steps for c in s.cases}
    if path is None:
        return weights
    try:
        data = jsonfile.load(path / "index.json" if path.is_dir() else path)
        for target in data["targets"]:
            for case in target["cases"]:
                key = (target["name"], case["id"])
                if key in weights:
                    weights[key] = max(float(case["duration_s"]), 0.01)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"--shard-weights {path}: not a readable pamconform report "
                         f"({type(exc).__name__}: {exc})") from None
    return weights


def run_steps(steps: list[Step], args: argparse.Namespace, console: Console,
              run: report.Run,
              after: Callable[[list[TargetResult]], list[str]] | None = None) -> int:
    """Check each step in order, timing it; then the report and the exit code.

    A lab that cannot run stops the run (exit 3) with the report of what finished, if any;
    Ctrl-C writes the report with the unfinished cases INTERRUPTED or NOT-RUN.
    ``after`` gives closing lines (e.g. differences between distros).
    """
    unique_names(steps)
    results: list[TargetResult] = []
    began = time.monotonic()
    lane = common.in_lane(args)  # its lines say whose they are
    try:
        for step in steps:
            start = time.monotonic()
            if lane:
                console.tag = step.name
            try:
                with lane_gate.setting_up():  # no other lane's timing case beside a build
                    result = step.check(step.cases)
            except HarnessError as exc:
                if step.lab is None or not results:
                    raise
                console.line(f"pamconform: the {step.lab} lab could not run: {exc}")
                common.finish(results, args, console, run)
                raise
            except UsageError:  # a later target's input (its socket, its login) is bad:
                if results:  # the targets already checked keep their report
                    common.finish(results, args, console, run)
                raise
            # the plan's name (shards, merge, a stopped run's NOT-RUN list) is the report's
            result.name = step.name
            result.info["timing"] = target_timing(result, time.monotonic() - start)
            results.append(result)
            if not lane:
                console.summary(result)
        console.tag = ""
        if lane:
            return common.finish(results, args, console, run)
        for text in after(results) if after else []:
            console.line(text)
    except Interrupted as stop:
        console.tag = ""
        return common.stopped(stop, results, [s.planned for s in steps], args, console, run)
    if len(results) > 1:
        each = ", ".join(f"{t.name} {t.info['timing']['wall_s']:.1f} s" for t in results)
        console.line(f"\nwall time: {time.monotonic() - began:.1f} s for {len(results)} "
                     f"targets ({each})")
    if run.shard is not None:
        console.line(f"shard {run.shard['part']}: {sum(len(s.cases) for s in steps)} of "
                     f"{sum(len(ids) for ids in run.shard['plan'].values())} (target, case) "
                     "pairs")
    return common.finish(results, args, console, run)


def list_steps(steps: list[Step], console: Console) -> int:
    """``--list``: the selected cases (once each, whatever the number of targets)."""
    unique = {c.id: c for step in steps for c in step.cases}
    return common.list_cases(list(unique.values()), console)
