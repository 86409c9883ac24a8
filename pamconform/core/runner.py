"""Runs cases against a target and grades them; one code path for the CLI and pytest."""

from __future__ import annotations

import fnmatch
import os
import queue
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from pamconform.core import gate as lane_gate
from pamconform.core import interrupts
from pamconform.core.context import CaseContext
from pamconform.core.errors import TargetUnreachable
from pamconform.core.outcome import Fail, Skip
from pamconform.core.registry import GROUPS, SLOTS, Case
from pamconform.core.verdicts import Severity, Verdict, effective

#: A case that runs longer than this is cut off and graded ERROR (its own timeouts failed).
#: The longest by design: nslcd's N-M2 side-by-side run (arming, a 60 s wait and an ssh
#: login: ~110 s at worst), then, if it did not count, its own behaviour alone (~85 s).
CASE_BUDGET_S = 240.0
#: How long past its budget a case still running keeps others that conflict with it
#: waiting (its operations' own timeouts end it well before).
OVERRUN_HOLD_S = 120.0
#: How often a case the machine-wide gate kept out is tried again (``run --parallel``).
GATE_RETRY_S = 0.2


@dataclass
class CaseResult:
    """The graded outcome of one case against one target."""

    case: Case
    verdict: Verdict
    message: str
    duration_s: float
    evidence: dict[str, Any] = field(default_factory=dict)
    #: when it started (``time.monotonic()``; 0.0 unknown): suite wall times in the report
    started: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.case.as_dict())
        out.update(
            verdict=str(self.verdict),
            message=self.message,
            duration_s=round(self.duration_s, 4),
            evidence=self.evidence,
        )
        return out


@dataclass
class TargetResult:
    """All results of one target."""

    name: str
    kind: str
    protocol: str
    results: list[CaseResult] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    def count(self, verdict: Verdict) -> int:
        return sum(1 for r in self.results if r.verdict is verdict)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, "protocol": self.protocol}
        out.update(self.info)
        out["summary"] = {str(v): self.count(v) for v in Verdict if self.count(v)}
        out["cases"] = [r.as_dict() for r in self.results]
        return out


def select(cases: Iterable[Case], include: list[str], exclude: list[str]) -> list[Case]:
    """Filter cases by id globs (``--cases``/``--exclude-cases``)."""
    chosen = []
    for case in cases:
        if include and not any(fnmatch.fnmatchcase(case.id, g) for g in include):
            continue
        if any(fnmatch.fnmatchcase(case.id, g) for g in exclude):
            continue
        chosen.append(case)
    return chosen


def grade(case: Case, ctx: CaseContext, error: BaseException | None) -> tuple[Verdict, str]:
    """Turn how a case body ended into a verdict and a one-line message."""
    if isinstance(error, Fail):
        if case.severity is not Severity.MUST and not ctx.strict:
            return Verdict.NON_STRICT, f"{case.severity} not met: {error}"
        return Verdict.FAIL, str(error)
    if isinstance(error, TargetUnreachable):
        return Verdict.FAIL, f"the server could not be reached: {error}"
    if isinstance(error, Skip):
        return Verdict.SKIPPED, str(error)
    if error is not None:
        return Verdict.ERROR, f"harness error: {type(error).__name__}: {error}"
    if ctx.non_strict_reasons:
        verdict = effective(Verdict.NON_STRICT, strict=ctx.strict)
        return verdict, "; ".join(ctx.non_strict_reasons)
    if ctx.informational_reasons:
        return Verdict.INFORMATIONAL, "; ".join(ctx.informational_reasons)
    return Verdict.PASS, ""


def run_case(case: Case, target: Any, *, strict: bool = False) -> CaseResult:
    """Run one case body under a watchdog and grade it."""
    running = _Running.launch(case, target, strict, None)
    try:
        running.thread.join(CASE_BUDGET_S)
    except KeyboardInterrupt as exc:
        stopped = interrupts.as_interrupted(exc)
        stopped.partial = running.interrupted(stopped)
        raise stopped from None
    return running.result()


@dataclass
class _Running:
    """A case body running in its own thread, and what it has produced so far."""

    case: Case
    ctx: CaseContext
    thread: threading.Thread
    start: float
    box: dict[str, BaseException]
    #: set when the body has returned (its thread may live a moment longer)
    ended: threading.Event = field(default_factory=threading.Event)
    #: what it holds of the machine-wide gate (``run --parallel``), released when it ends
    gate_pass: lane_gate.Pass | None = None

    @classmethod
    def launch(cls, case: Case, target: Any, strict: bool,
              done: queue.SimpleQueue[_Running] | None,
              gate_pass: lane_gate.Pass | None = None) -> _Running:
        ctx = CaseContext(target=target, strict=strict, exclusive=case.exclusive)
        if gate_pass is not None:
            ctx.release_gate = gate_pass.release
            ctx.regain_gate = partial(_regain, gate_pass, case)
        box: dict[str, BaseException] = {}
        holder: list[_Running] = []

        def body() -> None:
            try:
                case.func(ctx)
            except BaseException as exc:  # graded below, never lost
                box["error"] = exc
            finally:
                failed = ctx.end()
                if failed is not None and "error" not in box:
                    box["error"] = failed
                holder[0].ended.set()
                if gate_pass is not None:
                    gate_pass.release()
                if done is not None:
                    done.put(holder[0])

        worker = threading.Thread(target=body, name=f"case-{case.id}", daemon=True)
        running = cls(case, ctx, worker, time.monotonic(), box, gate_pass=gate_pass)
        holder.append(running)
        worker.start()
        return running

    @property
    def deadline(self) -> float:
        return self.start + CASE_BUDGET_S

    def result(self) -> CaseResult:
        """Grade the case: its verdict, or ERROR while its body still runs past the budget."""
        duration = time.monotonic() - self.start
        if not self.ended.is_set():
            verdict, message = Verdict.ERROR, f"case overran its {CASE_BUDGET_S:.0f} s budget"
        else:
            error = self.box.get("error")
            verdict, message = grade(self.case, self.ctx, error)
            if verdict is Verdict.ERROR and error is not None:
                self.ctx.extra["traceback"] = "".join(traceback.format_exception(error))
        return CaseResult(self.case, verdict, message, duration, self.ctx.evidence(),
                          started=self.start)

    def interrupted(self, stopped: interrupts.Interrupted) -> CaseResult:
        return interrupted_result(self.case, stopped, time.monotonic() - self.start, self.ctx)


def _regain(held: lane_gate.Pass, case: Case) -> None:
    """Take a pass beside the others again for a case that let go of its own
    (:meth:`CaseContext.works_again`); after SETUP_WAIT_S it goes on without."""
    again = lane_gate.wait_shared([n for n in lane_gate.COUNTED if n in case.exclusive])
    if again is not None:
        held.adopt(again)


def interrupted_result(case: Case, stopped: interrupts.Interrupted, duration: float,
                       ctx: CaseContext | None = None) -> CaseResult:
    """The case that was running when the run was stopped, with its evidence so far."""
    evidence: dict[str, Any] = {}
    if ctx is not None:
        try:  # the case's thread may still be adding to it
            evidence = ctx.evidence()
        except RuntimeError:
            evidence = {}
    return CaseResult(case, Verdict.INTERRUPTED,
                      f"interrupted by {stopped.signame} after {duration:.1f} s: no verdict",
                      duration, evidence)


def not_run_results(cases: Iterable[Case], stopped: interrupts.Interrupted) -> list[CaseResult]:
    """The cases a stopped run never started."""
    message = f"not run: the run was stopped by {stopped.signame}"
    return [CaseResult(c, Verdict.NOT_RUN, message, 0.0) for c in cases]


def not_run_target(name: str, cases: list[Case], stopped: interrupts.Interrupted, *,
                   kind: str, protocol: str) -> TargetResult:
    """A target a stopped run never started: every case NOT-RUN."""
    out = TargetResult(name=name, kind=kind, protocol=protocol,
                       results=not_run_results(cases, stopped))
    out.info["interrupted"] = {"signal": stopped.signame, "case": None}
    return out


Progress = Callable[[int, int, CaseResult], None]

#: The process's ``--jobs``, set by the CLI (None: one case at a time).
_jobs: int | None = None
#: Whether ``--jobs`` was given on the command line, not defaulted.
_jobs_given = False
#: Kinds of target whose cases share state no declaration can isolate: every case of a
#: server target talks to the one server process, and a faulty server's state (a grant
#: that sticks to the next request, a crash) reaches whichever case runs beside it, so
#: the verdicts would depend on the interleaving. They run one at a time unless
#: ``--jobs`` is given. A module target's direct cases each get their own scenario
#: server (drivers/lanes.py), so the pool's default applies to them.
SHARED_STATE_KINDS = frozenset({"server"})


def default_jobs() -> int:
    """The CLI's ``--jobs`` when not given: four times the CPUs (most cases wait on sockets and
    containers, not the CPU), at most 8."""
    return max(1, min(8, 4 * (os.cpu_count() or 1)))


def set_jobs(jobs: int | None, *, given: bool = True) -> None:
    """How many cases :func:`run_target` runs at once when its caller does not say
    (the CLI's ``--jobs``; None: one at a time, as a library caller expects).
    ``given=False``: a default, which targets of :data:`SHARED_STATE_KINDS` do not take."""
    global _jobs, _jobs_given
    if jobs is not None and jobs < 1:
        raise ValueError("jobs must be at least 1")
    _jobs, _jobs_given = jobs, given and jobs is not None


def jobs_setting(kind: str | None = None) -> int:
    """The cases :func:`run_target` runs at once unless told: :func:`set_jobs`, else 1;
    1 for a target of ``kind`` in :data:`SHARED_STATE_KINDS` unless ``--jobs`` was given."""
    if _jobs is None or (kind in SHARED_STATE_KINDS and not _jobs_given):
        return 1
    return _jobs


def run_target(
    cases: list[Case],
    target: Any,
    *,
    kind: str,
    protocol: str,
    strict: bool = False,
    progress: Progress | None = None,
    jobs: int | None = None,
) -> TargetResult:
    """Run cases against a target, up to ``jobs`` at once (default :func:`jobs_setting`
    for ``kind``).

    Two cases whose ``exclusive`` resources conflict (:meth:`Case.conflicts`) never run
    at the same time; each keeps its budget. Results are in the order of ``cases``
    whatever the order they finished in; ``progress`` is called as each finishes, from
    this thread, numbered by how many have finished. With ``jobs=1`` the cases run one
    after another in order.

    Under ``run --parallel`` (:mod:`pamconform.core.gate`) a case also waits for the
    machine-wide gate: what runs alone, or under valgrind, holds over the other processes.

    On Ctrl-C or SIGTERM, raises :class:`~pamconform.core.interrupts.Interrupted` whose
    ``partial`` is this target: the finished cases, the running ones INTERRUPTED, the
    rest NOT-RUN.
    """
    limit = jobs if jobs is not None else jobs_setting(kind)
    if limit == 1 and jobs is None and not _jobs_given:
        segments = _segments(cases)
        if any(len(s) > 1 for s in segments):
            return _run_segments(cases, segments, target, kind=kind, protocol=protocol,
                                 strict=strict, progress=progress)
    return _run_pool(cases, target, kind=kind, protocol=protocol, strict=strict,
                     progress=progress, limit=limit)


def _run_pool(cases: list[Case], target: Any, *, kind: str, protocol: str, strict: bool,
              progress: Progress | None, limit: int,
              overrun: dict[int, _Running] | None = None) -> TargetResult:
    """:func:`run_target`'s scheduler: up to ``limit`` cases at once.

    ``overrun``: the cases graded over their budget whose bodies still run (by ``id``):
    they keep what they hold (no conflicting case starts, nor the case itself again) until
    they end, or OVERRUN_HOLD_S at most; shared by the pools of one target's segments."""
    gate = lane_gate.from_env()
    lane_gate.end_setup()  # the target is set up: its cases take passes of their own
    out = TargetResult(name=target.name, kind=kind, protocol=protocol)
    finished: dict[int, CaseResult] = {}
    running: dict[int, _Running] = {}
    overrun = {} if overrun is None else overrun
    pending = run_order(cases) if limit == 1 else _start_order(cases)
    done: queue.SimpleQueue[_Running] = queue.SimpleQueue()

    def report(i: int, result: CaseResult) -> None:
        finished[i] = result
        if progress:
            progress(len(finished), len(cases), result)

    try:
        while pending or running:
            now = time.monotonic()
            for i, r in list(overrun.items()):
                if r.ended.is_set() or r.deadline + OVERRUN_HOLD_S <= now:
                    if r.gate_pass is not None:
                        r.gate_pass.release()
                    del overrun[i]
            gated = False
            if gate is not None:
                gate.begin_round()
            holding = [r.case for r in overrun.values()]
            for i in _startable(cases, pending, running, limit, holding=holding):
                gate_pass = gate.try_enter(i, cases[i]) if gate is not None else None
                if gate is not None and gate_pass is None:
                    gated = True  # the other processes hold what it needs: try again soon
                    continue
                launched = _Running.launch(cases[i], target, strict, done, gate_pass)
                running[i] = launched  # a signal from here on finds it running
                pending.remove(i)
            if gate is not None:
                gate.end_round()
            try:
                waits = [r.deadline for r in running.values()] or \
                    [r.deadline + OVERRUN_HOLD_S for r in overrun.values()]
                wait = min(waits) - time.monotonic() if waits else GATE_RETRY_S
                if gated or overrun:  # an overrun body of another pool ends unannounced
                    wait = min(wait, GATE_RETRY_S)
                ended = done.get(timeout=max(0.0, wait))
                # None: it was already graded as over its budget
                at = next((k for k, r in running.items() if r is ended), None)
                if at is not None:
                    report(at, running.pop(at).result())
            except queue.Empty:
                now = time.monotonic()
                for i, r in sorted(running.items()):
                    if r.deadline <= now:  # its thread stays behind, as a daemon
                        overrun[id(r)] = running.pop(i)
                        report(i, r.result())
    except KeyboardInterrupt as exc:
        stopped = interrupts.as_interrupted(exc)
        for i, r in sorted(running.items()):
            if i not in finished:
                report(i, r.interrupted(stopped))
        # whatever else has no result (pending, or caught between two lists) never ran
        rest = [i for i in range(len(cases)) if i not in finished]
        finished.update(zip(rest, not_run_results([cases[i] for i in rest], stopped),
                            strict=True))
        out.results = [finished[i] for i in range(len(cases))]
        first = min(running) if running else None
        out.info["interrupted"] = {"signal": stopped.signame,
                                   "case": cases[first].id if first is not None else None}
        stopped.partial = out
        raise stopped from None
    finally:
        if gate is not None:
            gate.withdraw()
            for r in running.values():  # interrupted: their bodies are being abandoned
                if r.gate_pass is not None:
                    r.gate_pass.release()
            for r in overrun.values():  # still running past their budget: held as long
                if r.gate_pass is not None:  # as they would hold their own target
                    hold = max(0.0, r.deadline + OVERRUN_HOLD_S - time.monotonic())
                    timer = threading.Timer(hold, r.gate_pass.release)
                    timer.daemon = True
                    timer.start()
    out.results = [finished[i] for i in range(len(cases))]
    return out


#: A case of a side-by-side batch that ended sooner than this may have been ended by the
#: batch's other connections (a server that drops its oldest client when a new one
#: comes), not by its own behaviour: the batch does not count.
BATCH_MIN_S = 1.0


def run_order(cases: list[Case]) -> list[int]:
    """The order cases run in one at a time: the suite's, except that the cases of a group
    (:data:`GROUPS`, e.g. ``idle-clients``) run next to the first of them, so that they can
    run side by side as one batch (:func:`_segments`). ``--jobs 1`` keeps this order too."""
    order: list[int] = []
    placed: set[int] = set()
    for i, case in enumerate(cases):
        if i in placed:
            continue
        members = [i]
        group = _group(case)
        for k in range(i + 1, len(cases)) if group else ():
            if _group(cases[k]) == group and \
                    not any(cases[k].conflicts(cases[m]) for m in members):
                members.append(k)
        order.extend(members)
        placed.update(members)
    return order


def _segments(cases: list[Case]) -> list[list[int]]:
    """The cases in :func:`run_order`, cut into runs: each run of two or more cases of one
    group that may run side by side, else one case."""
    out: list[list[int]] = []
    for i in run_order(cases):
        case = cases[i]
        group = _group(case)
        last = out[-1] if out else []
        if group and last and _group(cases[last[0]]) == group and \
                not any(case.conflicts(cases[k]) for k in last):
            last.append(i)
        else:
            out.append([i])
    return out


def _group(case: Case) -> str:
    groups = sorted(GROUPS.intersection(case.exclusive))
    return groups[0] if groups and not case.alone else ""


def _run_segments(cases: list[Case], segments: list[list[int]], target: Any, *, kind: str,
                  protocol: str, strict: bool, progress: Progress | None) -> TargetResult:
    """One case after another (:func:`run_order`), but each run of group cases side by
    side; a result of the batch counts when it is what the case gives alone
    (:func:`_batch_reruns`), and the others run again one after another. A group's cases
    each wait out a slow server (idle and stalled clients), so a batch takes the time of
    one."""
    out = TargetResult(name=target.name, kind=kind, protocol=protocol)
    finished: dict[int, CaseResult] = {}

    def report_as(indices: list[int]) -> Progress:
        def report(_n: int, _total: int, result: CaseResult) -> None:
            i = next(k for k in indices if cases[k] is result.case and k not in finished)
            finished[i] = result
            if progress:
                progress(len(finished), len(cases), result)
        return report

    overrun: dict[int, _Running] = {}  # held across the segments' pools
    in_batch: list[int] = []

    def run(indices: list[int], limit: int, report: Progress | None) -> TargetResult:
        return _run_pool([cases[i] for i in indices], target, kind=kind, protocol=protocol,
                         strict=strict, progress=report, limit=limit, overrun=overrun)

    try:
        for seg in segments:
            if len(seg) > 1:
                in_batch[:] = seg
                batch = run(seg, len(seg), None)
                in_batch.clear()
                whys = _batch_reruns(batch.results)
                others = ", ".join(cases[i].id for i in seg)
                for result, why in zip(batch.results, whys, strict=True):
                    if why is None:
                        result.evidence.setdefault("notes", []).append(
                            f"ran side by side with the other cases of its group ({others}): "
                            f"it counts because it passed, ran at least {BATCH_MIN_S:g} s, "
                            "and no case of the batch failed; otherwise it runs again alone")
                        report_as(seg)(0, 0, result)
                again = [(i, why) for i, why in zip(seg, whys, strict=True) if why is not None]
                if again:
                    rerun = run([i for i, _ in again], 1, report_as(seg))
                    for result, (_, why) in zip(rerun.results, again, strict=True):
                        result.evidence.setdefault("notes", []).append(
                            f"run alone: side by side with its group, {why}")
                continue
            run(seg, 1, report_as(seg))
    except KeyboardInterrupt as exc:
        stopped = interrupts.as_interrupted(exc)
        partial = stopped.partial
        if partial is not None:
            for result in partial.results:
                if in_batch and result.verdict not in (Verdict.INTERRUPTED, Verdict.NOT_RUN):
                    # ended beside its group, never checked against the batch's rules
                    result = interrupted_result(result.case, stopped, result.duration_s)
                if not any(r is result for r in finished.values()):
                    report_as([i for s in segments for i in s])(0, 0, result)
            out.info.update(partial.info)
        rest = [i for i in range(len(cases)) if i not in finished]
        finished.update(zip(rest, not_run_results([cases[i] for i in rest], stopped),
                            strict=True))
        out.results = [finished[i] for i in range(len(cases))]
        out.info.setdefault("interrupted", {"signal": stopped.signame, "case": None})
        stopped.partial = out
        raise stopped from None
    out.results = [finished[i] for i in range(len(cases))]
    return out


def _batch_reruns(results: list[CaseResult]) -> list[str | None]:
    """For each case of a side-by-side batch: None when its result is what it gives alone,
    else why it runs again alone. A result counts when it PASSed, not so soon that another's
    connection may have ended it, and no case of the batch FAILed or broke (one that did
    may have taken the server down, ending the others' clients). A FAIL, NON-STRICT or
    note beside others proves nothing about the case alone (a server that serves one client
    at a time drops the second client late), so it runs again alone."""
    broken = next((r for r in results if r.verdict in (Verdict.FAIL, Verdict.ERROR)), None)
    if broken is not None:
        return [f"{broken.case.id} was {broken.verdict}"] * len(results)
    whys: list[str | None] = []
    for result in results:
        if result.verdict is not Verdict.PASS:
            whys.append(f"it was {result.verdict}")
        elif result.duration_s < BATCH_MIN_S:
            whys.append(f"it ended after {result.duration_s:.2f} s")
        else:
            whys.append(None)
    return whys


def _start_order(cases: list[Case]) -> list[int]:
    """The order the pool starts cases in (results keep the suite's order): those that
    run alone first, then each group together, then those holding a resource (each
    such chain is serial: the sooner it starts the sooner it ends), then the rest."""
    def rank(i: int) -> tuple[int, str, int]:
        case = cases[i]
        groups = sorted(GROUPS.intersection(case.exclusive))
        if case.alone:
            return (0, "", i)
        if groups:
            return (1, groups[0], i)
        return (2 if case.exclusive else 3, "", i)

    return sorted(range(len(cases)), key=rank)


def _startable(cases: list[Case], pending: list[int], running: dict[int, _Running],
               limit: int, holding: Sequence[Case] = ()) -> list[int]:
    """The pending cases (in order) that may start now beside the running ones.

    ``holding``: cases past their budget still running: they take no slot but block
    the cases they conflict with. A pending case that conflicts with an earlier pending
    one waits for it, so a case that must run alone is not overtaken for ever by the
    cases after it.
    """
    chosen: list[int] = []
    for i in pending:
        if len(running) + len(chosen) >= limit:
            break
        case = cases[i]
        busy = [cases[k] for k in running] + [cases[k] for k in chosen] + list(holding)
        if any(case.conflicts(other) for other in busy) or \
                any(case is other for other in holding):  # its own first body still runs
            if case.alone:
                break  # nothing after it starts until it has run
            continue
        if any(sum(name in other.exclusive for other in busy) >= SLOTS[name]
               for name in SLOTS if name in case.exclusive):
            continue  # every slot of a resource it names is taken
        earlier = [cases[k] for k in pending[:pending.index(i)] if k not in chosen]
        if any(case.conflicts(other) for other in earlier):
            continue
        chosen.append(i)
    return chosen


def exit_code(targets: list[TargetResult]) -> int:
    """0 when no case FAILs, 1 when any does, 3 when the harness broke (ERROR) and none failed."""
    return verdicts_exit_code(r.verdict for t in targets for r in t.results)


def verdicts_exit_code(found: Iterable[Verdict]) -> int:
    """:func:`exit_code` of the verdicts themselves (e.g. those of a merged report)."""
    verdicts = set(found)
    if Verdict.FAIL in verdicts:
        return 1
    if Verdict.ERROR in verdicts:
        return 3
    return 0
