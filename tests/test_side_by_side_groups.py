"""One case at a time, but a run of group cases (idle and stalled clients) side by side
when that gives exactly what one after another would: every case passed, none ended soon."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from case_clock import CaseClock

from pamconform.core import interrupts, runner
from pamconform.core.outcome import Fail
from pamconform.core.registry import Case
from pamconform.core.runner import run_target
from pamconform.core.verdicts import Severity, Verdict


class _Target:
    name = "t"


def _case(cid: str, body: Callable[[Any], None], *exclusive: str,
          severity: Severity = Severity.MUST) -> Case:
    return Case(cid, "R-S4", severity, cid, "r.", "redirector", "server", body, "t",
                tuple(exclusive))


@pytest.fixture(autouse=True)
def _short_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "BATCH_MIN_S", 0.2)


def _run(cases: list[Case], **kw: Any) -> runner.TargetResult:
    return run_target(cases, _Target(), kind="server", protocol="redirector", **kw)


def _notes(result: runner.CaseResult) -> str:
    return " ".join(result.evidence.get("notes", []))


def test_a_run_of_group_cases_is_one_batch_and_counts_when_all_pass() -> None:
    clock = CaseClock()
    cases = [_case("a", clock.body("a", 0.05)),
             _case("i1", clock.body("i1", 0.4), "idle-clients"),
             _case("i2", clock.body("i2", 0.4), "idle-clients"),
             _case("i3", clock.body("i3", 0.4), "idle-clients"),
             _case("b", clock.body("b", 0.05))]
    seen: list[tuple[int, str]] = []
    out = _run(cases, progress=lambda n, total, r: seen.append((n, r.case.id)))
    assert [r.case.id for r in out.results] == ["a", "i1", "i2", "i3", "b"]
    assert all(r.verdict is Verdict.PASS for r in out.results)
    assert clock.overlap("i1", "i2") and clock.overlap("i2", "i3")
    # the cases around the batch keep their places: before it, and after it
    assert not clock.overlaps("a") and not clock.overlaps("b")
    assert clock.spans["a"][1] <= clock.spans["i1"][0] <= clock.spans["b"][0]
    assert [n for n, _ in seen] == [1, 2, 3, 4, 5] and seen[0][1] == "a" and seen[-1][1] == "b"
    assert "side by side" in _notes(out.results[1]) and "side by side" not in _notes(
        out.results[0])


def _serial_server() -> tuple[CaseClock, Callable[[str], Callable[[Any], None]]]:
    """Cases of a server that serves one client at a time: beside another, a case fails."""
    clock = CaseClock()
    busy: list[str] = []
    lock = threading.Lock()

    def body(cid: str) -> Callable[[Any], None]:
        inner = clock.body(cid, 0.3)

        def run(ctx: Any) -> None:
            with lock:
                crowded = bool(busy)
                busy.append(cid)
            try:
                inner(ctx)
            finally:
                with lock:
                    busy.remove(cid)
            if crowded:
                raise Fail("the client to be dropped within the idle limit", "still open")
        return run

    return clock, body


def test_a_batch_with_a_failure_is_thrown_away_and_each_case_runs_alone() -> None:
    _, body = _serial_server()
    cases = [_case(c, body(c), "idle-clients") for c in ("i1", "i2", "i3")]
    out = _run(cases)
    assert [r.verdict for r in out.results] == [Verdict.PASS] * 3
    assert all("run alone" in _notes(r) and "was FAIL" in _notes(r) for r in out.results)
    # what one at a time gives, as --jobs 1 gives it
    _, body1 = _serial_server()
    serial = _run([_case(c, body1(c), "idle-clients") for c in ("i1", "i2", "i3")], jobs=1)
    assert [r.verdict for r in serial.results] == [r.verdict for r in out.results]


def test_a_batch_whose_case_ended_at_once_is_run_again_alone() -> None:
    # a server that drops its oldest client when another connects: beside the others the
    # first case's client is dropped at once (a pass); alone it is never dropped (a fail)
    alone = {"value": True}
    running: list[str] = []
    lock = threading.Lock()

    def evicted(ctx: Any) -> None:
        with lock:
            running.append("first")
        time.sleep(0.05)
        with lock:
            others = len(running) > 1
            running.remove("first")
        if not others and alone["value"]:
            raise Fail("the client to be dropped", "still open")

    def other(cid: str) -> Callable[[Any], None]:
        def run(ctx: Any) -> None:
            with lock:
                running.append(cid)
            time.sleep(0.4)
            with lock:
                running.remove(cid)
        return run

    cases = [_case("first", evicted, "idle-clients"), _case("i2", other("i2"), "idle-clients")]
    out = _run(cases)
    assert out.results[0].verdict is Verdict.FAIL
    assert "ended after" in _notes(out.results[0])


def test_a_should_not_met_in_a_batch_runs_again_alone_and_the_passes_count() -> None:
    # a server with no idle timeout: the stalled clients get no grant (PASS), the silent
    # one is never dropped (a SHOULD: NON-STRICT); only that one costs a second wait
    clock = CaseClock()

    def never_dropped(ctx: Any) -> None:
        clock.body("silent", 0.3)(ctx)
        raise Fail("the server to drop a silent client", "still open")

    cases = [_case("i1", clock.body("i1", 0.3), "idle-clients"),
             _case("silent", never_dropped, "idle-clients", severity=Severity.SHOULD),
             _case("i2", clock.body("i2", 0.3), "idle-clients")]
    runs: list[str] = []
    out = _run(cases, progress=lambda n, total, r: runs.append(r.case.id))
    assert [r.verdict for r in out.results] == [Verdict.PASS, Verdict.NON_STRICT, Verdict.PASS]
    assert "ran side by side" in _notes(out.results[0]) and "ran side by side" in _notes(
        out.results[2])
    assert "run alone" in _notes(out.results[1]) and "it was NON-STRICT" in _notes(
        out.results[1])
    assert not clock.overlaps("silent")  # the span of its second run, alone
    assert sorted(runs) == ["i1", "i2", "silent"]


def test_group_cases_apart_run_together_where_the_first_is_and_jobs_one_keeps_that_order(
) -> None:
    clock = CaseClock()
    cases = [_case("i1", clock.body("i1", 0.3), "idle-clients"),
             _case("a", clock.body("a", 0.05)),
             _case("i2", clock.body("i2", 0.3), "idle-clients"),
             _case("b", clock.body("b", 0.05))]
    out = _run(cases)
    assert clock.overlap("i1", "i2") and not clock.overlaps("a") and not clock.overlaps("b")
    assert clock.spans["i2"][1] <= clock.spans["a"][0] <= clock.spans["b"][0]
    assert [r.case.id for r in out.results] == ["i1", "a", "i2", "b"]  # the suite's order
    # one at a time, the cases go in that same order: what the batch must equal
    clock1 = CaseClock()
    _run([_case(c, clock1.body(c, 0.05), *(["idle-clients"] if c[0] == "i" else []))
          for c in ("i1", "a", "i2", "b")], jobs=1)
    assert [c for c, _ in sorted(clock1.spans.items(), key=lambda kv: kv[1][0])] == [
        "i1", "i2", "a", "b"]


def test_a_thrown_away_batch_runs_again_one_case_after_another_in_that_order() -> None:
    clock, body = _serial_server()
    cases = [_case("i1", body("i1"), "idle-clients"), _case("a", clock.body("a", 0.05)),
             _case("i2", body("i2"), "idle-clients")]
    out = _run(cases)
    assert [r.verdict for r in out.results] == [Verdict.PASS] * 3
    assert "run alone" in _notes(out.results[0]) and "run alone" in _notes(out.results[2])
    assert clock.spans["a"][0] >= max(clock.spans["i1"][1], clock.spans["i2"][1])


def test_run_order_leaves_cases_without_a_group_in_the_suites_order() -> None:
    cases = [_case("a", lambda ctx: None), _case("i1", lambda ctx: None, "idle-clients"),
             _case("b", lambda ctx: None, "user-state"), _case("t", lambda ctx: None, "timing"),
             _case("i2", lambda ctx: None, "idle-clients"), _case("c", lambda ctx: None)]
    assert [cases[i].id for i in runner.run_order(cases)] == ["a", "i1", "i2", "b", "t", "c"]


def test_jobs_one_given_runs_the_group_one_at_a_time() -> None:
    clock = CaseClock()
    cases = [_case(c, clock.body(c, 0.25), "idle-clients") for c in ("i1", "i2")]
    try:
        runner.set_jobs(1, given=True)
        out = _run(cases)
    finally:
        runner.set_jobs(None)
    assert not clock.overlap("i1", "i2")
    assert "side by side" not in _notes(out.results[0])


def test_ctrl_c_during_a_batch_reports_it_interrupted_and_the_rest_not_run() -> None:
    started = threading.Event()

    def slow(ctx: Any) -> None:
        started.set()
        time.sleep(2)

    cases = [_case("a", lambda ctx: None), _case("i1", slow, "idle-clients"),
             _case("i2", slow, "idle-clients"), _case("b", lambda ctx: None)]
    timer = threading.Thread(target=lambda: (started.wait(5), time.sleep(0.1),
                                             os.kill(os.getpid(), signal.SIGINT)))
    with interrupts.guard():
        timer.start()
        with pytest.raises(interrupts.Interrupted) as caught:
            _run(cases)
    timer.join()
    partial = caught.value.partial
    assert [r.case.id for r in partial.results] == ["a", "i1", "i2", "b"]
    assert [r.verdict for r in partial.results] == [
        Verdict.PASS, Verdict.INTERRUPTED, Verdict.INTERRUPTED, Verdict.NOT_RUN]
    assert partial.info["interrupted"]["signal"] == "SIGINT"
