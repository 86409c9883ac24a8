"""``run --parallel N``: the run's targets in N lanes, side by side, one report.

Each lane is a ``pamconform run`` process of its own (the same command line, told which
targets to check and where to put their report): a lab, a local server and the Ctrl-C of
each stay in their process. Targets share nothing but the engine (each opens its own lab
containers; image builds wait for each other on a lock file), so any target may go to
any lane. Lanes are balanced by the targets' expected durations: their wall times in an
earlier report (``--shard-weights``, else the last one in ``reports/latest``), else for
a bundled target in :data:`REFERENCE_RUN`, else an estimate per case.

The lanes share a machine-wide gate (:mod:`pamconform.core.gate`): a timing case (a
measurement another lane's load would skew) runs with no case of another lane running,
and at most ``registry.SLOTS["valgrind"]`` valgrind cases run at once over all lanes, so
no verdict depends on what ran beside it. A case that needs its target alone (``target``)
has it alone in its own lane; other lanes' targets are other processes, and their load
stays far below the timeouts such a case grades (the server gallery, one target after
another and in four lanes, gave the same verdicts: docs/benchmarks.md). Each lane's lines
are shown as they come, tagged with its target; the summaries, the report and the exit
code come at the end, in plan order, as from a run one target after another.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from pamconform import report
from pamconform.cli import common
from pamconform.cli.console import Console
from pamconform.cli.targets import SETUP_ESTIMATE_S, Step, case_weights, unique_names
from pamconform.core import gate as lane_gate
from pamconform.core import interrupts, jsonfile
from pamconform.core.errors import UsageError
from pamconform.core.interrupts import Interrupted
from pamconform.core.options import Count
from pamconform.core.runner import CaseResult, TargetResult, not_run_target
from pamconform.core.verdicts import Verdict

#: The most lanes ``--parallel`` runs.
MAX_LANES = 64

#: How long the lanes get to write their reports and remove their labs after a signal.
STOP_WAIT_S = 180.0
#: How long a lane that has exited gets to close its output.
DRAIN_S = 10.0


def add_options(p: argparse.ArgumentParser) -> None:
    """``--parallel N`` and the hidden ``--lane-targets`` of a lane's own process."""
    p.add_argument("--parallel", type=Count(maximum=MAX_LANES), default=1, metavar="N",
                   help="check up to N targets at once, each lane of targets in its own "
                   "process (a timing case still runs with the machine alone, and valgrind "
                   "cases take at most two slots over all lanes); default 1")
    p.add_argument("--lane-targets", default=None, help=argparse.SUPPRESS)


def keep_lane(steps: list[Step], args: argparse.Namespace) -> list[Step]:
    """In a lane's process: only the targets its parent gave it (all of them known)."""
    if not args.lane_targets:
        return steps
    names = json.loads(args.lane_targets)
    known = {s.name for s in steps}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UsageError(f"--lane-targets: {unknown[0]!r} is not a target of this run")
    return [s for s in steps if s.name in names]


def assign(steps: list[Step], count: int, cost: Callable[[Step], float]) -> list[list[Step]]:
    """``steps`` over at most ``count`` lanes, the longest first to the least loaded lane;
    each lane's steps in plan order. No lane is empty."""
    order = {id(s): i for i, s in enumerate(steps)}
    lanes: list[list[Step]] = [[] for _ in range(min(count, len(steps)))]
    load = [0.0] * len(lanes)
    for step in sorted(steps, key=lambda s: -cost(s)):
        k = load.index(min(load))
        lanes[k].append(step)
        load[k] += cost(step)
    return [sorted(lane, key=lambda s: order[id(s)]) for lane in lanes]


#: The bundled targets' wall and case times in a run on the development machine (a
#: report cut down to them, benchmarks/bench_parallel.py --write-reference): how the
#: lanes are balanced when no earlier report exists (a fresh clone's first run). A static
#: estimate per case misjudges them badly (pam_ldap's minute-long N-M2 wait, module
#: cases run several at once).
REFERENCE_RUN = Path(__file__).resolve().parent / "reference_run.json"


def _costs(steps: list[Step], args: argparse.Namespace) -> Callable[[Step], float]:
    """A target's expected seconds in a lane: its wall time in the earlier report (scaled
    to the selected cases' share of its case time there), else (a bundled target that
    report lacks, e.g. after a ``--no-lab`` run) in :data:`REFERENCE_RUN`, else its
    set-up and case estimates. A module target runs its cases several at once, so the
    sum of its case durations overstates it several times; its wall time does not."""
    path = getattr(args, "shard_weights", None)
    latest = Path("reports") / "latest" / "index.json"
    if path is None and latest.is_file():
        path = latest
    try:
        weights = case_weights(path, steps)
        walls = target_walls(path)
    except UsageError:  # an unreadable last report: the estimate
        weights, walls = case_weights(None, steps), {}
    try:
        shipped = target_walls(REFERENCE_RUN if REFERENCE_RUN.is_file() else None)
    except UsageError:
        shipped = {}

    def cost(step: Step) -> float:
        for earlier in (walls.get(step.name), shipped.get(step.name)):
            if earlier is not None and all(c.id in earlier.cases for c in step.cases):
                share = sum(earlier.cases[c.id] for c in step.cases) / earlier.cases_s
                return earlier.wall_s * min(1.0, share)
        return SETUP_ESTIMATE_S[step.in_lab] + sum(weights[(step.name, c.id)]
                                                   for c in step.cases)

    return cost


@dataclass
class EarlierTarget:
    """A target's wall time and case durations in an earlier report."""

    wall_s: float
    cases: dict[str, float]

    @property
    def cases_s(self) -> float:
        return sum(self.cases.values()) or 1.0


def target_walls(path: Path | None) -> dict[str, EarlierTarget]:
    """Each target of the report at ``path`` (a directory or its index.json) that recorded
    its wall time; nothing without a report. An unreadable one is a UsageError."""
    if path is None:
        return {}
    try:
        data = jsonfile.load(path / "index.json" if path.is_dir() else path)
        found = {}
        for target in data["targets"]:
            wall = (target.get("timing") or {}).get("wall_s")
            if isinstance(wall, int | float) and wall > 0:
                found[str(target["name"])] = EarlierTarget(float(wall), {
                    str(c["id"]): max(float(c["duration_s"]), 0.01) for c in target["cases"]})
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UsageError(f"--shard-weights {path}: not a readable pamconform report "
                         f"({type(exc).__name__}: {exc})") from None
    return found


@dataclass
class _Lane:
    """One lane's process, its targets and where its report goes."""

    number: int
    steps: list[Step]
    report: Path
    proc: subprocess.Popen[bytes]
    reader: threading.Thread | None = None

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.steps]


def run_lanes(steps: list[Step], args: argparse.Namespace, console: Console, run: report.Run,
              after: Callable[[list[TargetResult]], list[str]] | None = None) -> int:
    """Check ``steps`` in ``args.parallel`` lanes (see the module docstring); the exit code."""
    from pamconform.cli.targets import run_steps

    unique_names(steps)
    if args.parallel < 2 or len(steps) < 2:
        return run_steps(steps, args, console, run, after=after)
    lanes_steps = assign(steps, args.parallel, _costs(steps, args))
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pamconform-lanes-") as tmp:
        gate = Path(tmp) / "gate"
        gate.mkdir(mode=0o700)
        console.line(f"== {len(steps)} targets in {len(lanes_steps)} lanes: " + "; ".join(
            f"lane {k + 1}: {', '.join(s.name for s in lane)}"
            for k, lane in enumerate(lanes_steps)))
        lanes: list[_Lane] = []
        out_lock = threading.Lock()
        try:
            with interrupts.shielded():  # a signal now: after every lane is known
                for k, lane_steps in enumerate(lanes_steps):
                    lanes.append(_spawn(k + 1, lane_steps, Path(tmp) / f"lane{k + 1}", gate,
                                        args))
            for lane in lanes:
                lane.reader = threading.Thread(target=_forward, args=(lane, console, out_lock),
                                               name=f"lane-{lane.number}", daemon=True)
                lane.reader.start()
            _wait(lanes)
            results, broken = _collect(lanes, steps)
        except Interrupted as stop:
            _stop(lanes, stop.signum)
            results, broken = _collect(lanes, steps, stopped=stop)
            for result in results:
                console.summary(result)
            stop.partial = None
            return common.stopped(stop, results, [s.planned for s in steps], args, console,
                                  run)
        except BaseException:
            _stop(lanes, signal.SIGTERM)  # nothing of this run may go on without it
            raise
    for result in results:
        console.summary(result)
    for text in after(results) if after else []:
        console.line(text)
    each = ", ".join(f"{t.name} {t.info['timing']['wall_s']:.1f} s" for t in results
                     if "timing" in t.info)
    console.line(f"\nwall time: {time.monotonic() - began:.1f} s for {len(results)} targets "
                 f"in {len(lanes)} lanes ({each})")
    if run.shard is not None:
        console.line(f"shard {run.shard['part']}: {sum(len(s.cases) for s in steps)} of "
                     f"{sum(len(ids) for ids in run.shard['plan'].values())} (target, case) "
                     "pairs")
    code = common.finish(results, args, console, run)
    for text in broken:
        console.line(f"pamconform: {text}")
    return 3 if broken else code


def _spawn(number: int, steps: list[Step], where: Path, gate: Path,
           args: argparse.Namespace) -> _Lane:
    typed = getattr(args, "command_line", None) or sys.argv[1:]
    argv = [sys.executable, "-m", "pamconform.cli", *typed,
            "--parallel", "1", "--lane-targets", json.dumps([s.name for s in steps]),
            "--report", str(where)]
    env = {**os.environ, lane_gate.ENV: str(gate), "PYTHONUNBUFFERED": "1"}
    # its own process group: a Ctrl-C reaches the parent only, which passes it on once
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env=env, process_group=0)
    return _Lane(number, steps, where, proc)


def _forward(lane: _Lane, console: Console, lock: threading.Lock) -> None:
    """Show the lane's lines as they come: as they are (the lane's process redacted them;
    redacting again could cut a case id). Drained to the end even when our output is gone,
    so a lane never blocks on a full pipe."""
    stream: IO[bytes] | None = lane.proc.stdout
    assert stream is not None
    shown = True
    for raw in stream:
        if not shown:
            continue
        try:
            with lock:
                console.out.write(raw.decode("utf-8", "replace"))
                console.out.flush()
        except (OSError, ValueError):  # a closed pipe (| head): keep draining
            shown = False


def _wait(lanes: list[_Lane]) -> None:
    """Until every lane's process has ended (a signal raises Interrupted meanwhile)."""
    while any(lane.proc.poll() is None for lane in lanes):
        time.sleep(0.2)
    for lane in lanes:
        if lane.reader is not None:
            lane.reader.join(DRAIN_S)


def _stop(lanes: list[_Lane], signum: int) -> None:
    """Pass the signal on once; wait for the lanes' reports; kill what is left (the
    lane's whole process group)."""
    for lane in lanes:
        if lane.proc.poll() is None:
            lane.proc.send_signal(signum)
    deadline = time.monotonic() + STOP_WAIT_S
    for lane in lanes:
        try:
            lane.proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(OSError):
                os.killpg(lane.proc.pid, signal.SIGKILL)
            lane.proc.wait(DRAIN_S)
        if lane.reader is not None:
            lane.reader.join(DRAIN_S)


def _collect(lanes: list[_Lane], steps: list[Step], stopped: Interrupted | None = None
             ) -> tuple[list[TargetResult], list[str]]:
    """The targets of the run in plan order, and a line per lane that broke off.

    A target its lane did not report whole (the lane ended before it, or reported other
    cases than planned) is in the report with every case ERROR, or NOT-RUN when the run
    was stopped: never left out, so no report of a broken run looks like a smaller clean
    one.
    """
    found: dict[str, TargetResult] = {}
    broken: list[str] = []
    by_name = {s.name: s for s in steps}
    for lane in lanes:
        data = _lane_report(lane)
        for target in data.get("targets", []) if data else []:
            step = by_name.get(target.get("name"))
            if step is not None and step.name in lane.names:
                result = _target(step, target)
                if [r.case.id for r in result.results] == [c.id for c in step.cases]:
                    found[step.name] = result
        missing = [n for n in lane.names if n not in found]
        if missing:
            why = (f"lane {lane.number} ended with exit code {lane.proc.returncode} before it "
                   f"had checked {', '.join(missing)}")
            broken.append(f"{why} (its lines above say why)")
            for name in missing:
                step = by_name[name]
                found[name] = (not_run_target(name, step.cases, stopped, kind=step.kind,
                                              protocol=step.protocol) if stopped else
                               TargetResult(name, step.kind, step.protocol, [CaseResult(
                                   c, Verdict.ERROR, f"not checked: {why}", 0.0)
                                   for c in step.cases]))
        elif data is not None and data.get("interrupted") and stopped is None:
            broken.append(f"lane {lane.number} was stopped by {data['interrupted']}: the "
                          f"cases of {', '.join(lane.names)} it had not finished are "
                          "INTERRUPTED or NOT-RUN")
    return [found[s.name] for s in steps if s.name in found], broken


def _lane_report(lane: _Lane) -> dict[str, Any] | None:
    try:
        data = json.loads((lane.report / "index.json").read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _target(step: Step, data: dict[str, Any]) -> TargetResult:
    """A lane's target from its report (already redacted), with the plan's cases."""
    cases = {c.id: c for c in step.cases}
    results = [CaseResult(cases[c["id"]], Verdict(c["verdict"]), c.get("message", ""),
                          float(c.get("duration_s", 0.0)), c.get("evidence", {}))
               for c in data.get("cases", []) if c.get("id") in cases]
    info = {k: v for k, v in data.items()
            if k not in ("name", "kind", "protocol", "summary", "cases")}
    return TargetResult(step.name, step.kind, step.protocol, results, info)
