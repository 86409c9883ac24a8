"""Cases in parallel: the ``exclusive=`` declaration, the runner's pool, order, Ctrl-C."""

from __future__ import annotations

import queue
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from case_clock import CaseClock

from pamconform.core import interrupts, registry, runner
from pamconform.core.registry import RESOURCES, Case, case_factory
from pamconform.core.runner import run_target
from pamconform.core.verdicts import Severity


class _Target:
    name = "t"


def _case(cid: str, body: Callable[[Any], None], *exclusive: str) -> Case:
    return Case(cid, "R-S1", Severity.MUST, cid, "r.", "redirector", "server", body, "t",
                tuple(exclusive))


def test_unknown_resource_is_refused_and_a_file_default_is_merged() -> None:
    case = case_factory(protocol="redirector", kind="server", exclusive="user-state")
    with pytest.raises(ValueError, match="not a known resource"):
        case("x.y", rule="R-S1", severity=Severity.MUST, title="t", requirement="r.",
             exclusive=("timming",))
    assert {"target", "timing", "user-state", "scenario", "sshd"} <= set(RESOURCES)


def test_conflicts() -> None:
    free, free2 = _case("a", print), _case("b", print)
    timing, user, user2 = _case("c", print, "timing"), _case("d", print, "user-state"), \
        _case("e", print, "user-state")
    idle, idle2 = _case("f", print, "idle-clients"), _case("g", print, "idle-clients")
    assert not free.conflicts(free2)
    assert timing.conflicts(free) and free.conflicts(timing)
    assert user.conflicts(user2) and not user.conflicts(free)
    assert not idle.conflicts(idle2) and idle.conflicts(free) and idle.conflicts(user)


def test_results_keep_the_order_and_free_cases_overlap() -> None:
    clock = CaseClock()
    cases = [_case("a", clock.body("a", 0.6)), _case("b", clock.body("b", 0.1)),
             _case("c", clock.body("c", 0.3))]
    seen: list[tuple[int, str]] = []
    start = time.monotonic()
    out = run_target(cases, _Target(), kind="server", protocol="redirector", jobs=3,
                     progress=lambda i, n, r: seen.append((i, r.case.id)))
    took = time.monotonic() - start
    assert [r.case.id for r in out.results] == ["a", "b", "c"]
    assert [str(r.verdict) for r in out.results] == ["PASS"] * 3
    assert took < 5, took  # a bound for a hang only: the overlaps below prove concurrency
    assert clock.overlap("a", "b") and clock.overlap("a", "c")
    # progress comes as each finishes, numbered 1..n, from the calling thread
    assert seen == [(1, "b"), (2, "c"), (3, "a")]


def test_jobs_one_runs_in_order_one_at_a_time() -> None:
    clock = CaseClock()
    cases = [_case(c, clock.body(c, 0.05)) for c in "abc"]
    run_target(cases, _Target(), kind="server", protocol="redirector", jobs=1)
    starts = sorted(clock.spans, key=lambda c: clock.spans[c][0])
    assert starts == ["a", "b", "c"]
    assert not any(clock.overlap(x, y) for x, y in (("a", "b"), ("b", "c"), ("a", "c")))


def test_library_default_is_sequential_and_set_jobs_changes_it() -> None:
    assert runner.jobs_setting() == 1
    try:
        runner.set_jobs(3)
        assert runner.jobs_setting() == 3
    finally:
        runner.set_jobs(None)
    with pytest.raises(ValueError):
        runner.set_jobs(0)


def test_the_command_leaves_the_library_default_behind() -> None:
    from pamconform.cli.main import main

    assert main(["run", "--no-lab", "--list", "--jobs", "3"]) == 0
    assert runner.jobs_setting("module") == 1


def test_a_server_target_takes_the_pool_only_when_jobs_is_given() -> None:
    """Every case of a server target talks to one server process: the CLI's default pool
    applies to module targets, a server target runs one case at a time unless asked."""
    try:
        runner.set_jobs(8, given=False)
        assert (runner.jobs_setting("server"), runner.jobs_setting("module")) == (1, 8)
        runner.set_jobs(8)
        assert (runner.jobs_setting("server"), runner.jobs_setting("module")) == (8, 8)
    finally:
        runner.set_jobs(None)
    assert runner.jobs_setting("module") == 1


def test_the_cli_defaults_the_pool_without_marking_it_given() -> None:
    from pamconform.cli.main import apply_jobs, build_parser

    seen = []
    for argv in (["server", "/nonexistent.sock"], ["server", "/nonexistent.sock", "--jobs", "3"],
                 ["module", "src"]):
        try:
            apply_jobs(build_parser().parse_args(argv))
            seen.append((runner.jobs_setting("server"), runner.jobs_setting("module")))
        finally:
            runner.set_jobs(None)
    assert seen == [(1, runner.default_jobs()), (3, 3), (1, runner.default_jobs())]


def test_exclusive_cases_never_overlap() -> None:
    clock = CaseClock()
    cases = [
        _case("free1", clock.body("free1", 0.3)),
        _case("timing", clock.body("timing", 0.2), "timing"),
        _case("free2", clock.body("free2", 0.3)),
        _case("user1", clock.body("user1", 0.2), "user-state"),
        _case("user2", clock.body("user2", 0.2), "user-state"),
        _case("idle1", clock.body("idle1", 0.2), "idle-clients"),
        _case("idle2", clock.body("idle2", 0.2), "idle-clients"),
        _case("free3", clock.body("free3", 0.2)),
    ]
    out = run_target(cases, _Target(), kind="server", protocol="redirector", jobs=8)
    assert [r.case.id for r in out.results] == [c.id for c in cases]
    ids = [c.id for c in cases]
    for other in ids:
        if other != "timing":
            assert not clock.overlap("timing", other), other
    assert not clock.overlap("user1", "user2")
    assert clock.overlap("idle1", "idle2")
    for free in ("free1", "free2", "free3", "user1", "user2"):
        assert not clock.overlap("idle1", free) and not clock.overlap("idle2", free)
    assert clock.overlap("free2", "user1")  # and the pool did run cases at once


def test_a_case_over_budget_is_graded_and_frees_its_slot(monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    monkeypatch.setattr(runner, "CASE_BUDGET_S", 0.3)
    release = threading.Event()
    cases = [_case("stuck", lambda ctx: release.wait(5)), _case("quick", lambda ctx: None)]
    try:
        out = run_target(cases, _Target(), kind="server", protocol="redirector", jobs=2)
    finally:
        release.set()
    assert [str(r.verdict) for r in out.results] == ["ERROR", "PASS"]
    assert "budget" in out.results[0].message


def _signal_soon(signum: int, after: float) -> threading.Timer:
    import os

    timer = threading.Timer(after, os.kill, args=(os.getpid(), signum))
    timer.start()
    return timer


def test_ctrl_c_marks_every_running_case_interrupted_and_the_rest_not_run() -> None:
    cases = [_case("a", lambda ctx: None), _case("b", lambda ctx: time.sleep(30)),
             _case("c", lambda ctx: time.sleep(30)), _case("d", lambda ctx: None, "timing"),
             _case("e", lambda ctx: None), _case("f", lambda ctx: None)]
    partial = _stopped_after(0.5, cases, jobs=2)
    assert [r.case.id for r in partial.results] == list("abcdef")
    # d runs alone, so the pool starts it first; then a and b, then c beside b
    assert [str(r.verdict) for r in partial.results] == \
        ["PASS", "INTERRUPTED", "INTERRUPTED", "PASS", "NOT-RUN", "NOT-RUN"]
    assert partial.info["interrupted"] == {"signal": "SIGINT", "case": "b"}


def test_a_case_that_just_ended_is_never_graded_as_over_its_budget(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # the pool learns of an end from the case's thread, before that thread has exited:
    # make the thread linger after telling, as a busy machine does
    class Lingering(queue.SimpleQueue):  # type: ignore[type-arg]
        def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
            super().put(item)
            time.sleep(0.2)

    monkeypatch.setattr(runner.queue, "SimpleQueue", Lingering)
    cases = [_case(f"c{i}", lambda ctx: None) for i in range(6)]
    out = run_target(cases, _Target(), kind="server", protocol="redirector", jobs=3)
    assert {str(r.verdict) for r in out.results} == {"PASS"}, out.results[0].message


def test_the_pool_starts_alone_cases_then_groups_then_resource_chains() -> None:
    clock = CaseClock()
    cases = [_case("free", clock.body("free", 0.05)),
             _case("user", clock.body("user", 0.05), "user-state"),
             _case("idle", clock.body("idle", 0.05), "idle-clients"),
             _case("timing", clock.body("timing", 0.05), "timing")]
    out = run_target(cases, _Target(), kind="server", protocol="redirector", jobs=1)
    assert sorted(clock.spans, key=lambda c: clock.spans[c][0]) == [c.id for c in cases]
    clock.spans.clear()
    out = run_target(cases, _Target(), kind="server", protocol="redirector", jobs=4)
    assert [r.case.id for r in out.results] == [c.id for c in cases]
    started = sorted(clock.spans, key=lambda c: clock.spans[c][0])
    assert started[:2] == ["timing", "idle"]
    assert clock.overlap("user", "free")


def test_ctrl_c_of_a_parallel_run_writes_the_report_and_stops_the_server(tmp_path: Any
                                                                         ) -> None:
    """The command with a pool (a server target takes one when --jobs is given): two
    idle-client cases run at once when the signal comes; both INTERRUPTED, the rest of
    the target NOT-RUN, the server gone."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    report = tmp_path / "report"
    cases = ["redir.server.silent-client-timeout", "redir.server.stalled-mid-request-timeout",
             "redir.server.grant-valid"]
    argv = [sys.executable, "-m", "pamconform.cli", "run", "--no-lab", "--jobs", "4",
            "--idle-limit", "30", "--report", str(report),
            *[a for c in cases for a in ("--cases", c)]]
    proc = subprocess.Popen(argv, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=dict(os.environ, PYTHONPATH=str(root)))
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # the target's heading: its cases start right after
            if line.startswith("== reference-server"):
                break
        time.sleep(1.5)
        servers = [p for p in Path("/proc").iterdir() if p.name.isdigit()
                   and _parent(p) == proc.pid and b"serve" in _cmdline(p)]
        assert servers, "the reference server runs as a child"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, out + err
    assert "Traceback" not in err
    verdicts = {c["id"]: c["verdict"] for t in json.loads((report / "index.json").read_text())
                ["targets"] if t["name"] == "reference-server" for c in t["cases"]}
    assert verdicts == {"redir.server.grant-valid": "NOT-RUN",
                        "redir.server.silent-client-timeout": "INTERRUPTED",
                        "redir.server.stalled-mid-request-timeout": "INTERRUPTED"}
    assert not any(p.exists() and b"serve" in _cmdline(p) for p in servers)


def _parent(proc_dir: Any) -> int:
    try:
        return int((proc_dir / "stat").read_text().rpartition(")")[2].split()[1])
    except (OSError, ValueError, IndexError):
        return -1


def _cmdline(proc_dir: Any) -> bytes:
    try:
        return bytes((proc_dir / "cmdline").read_bytes())
    except OSError:
        return b""


def test_the_documented_jobs_default_is_the_codes(monkeypatch: pytest.MonkeyPatch) -> None:
    from pathlib import Path

    from pamconform.cli.main import build_parser

    monkeypatch.setattr(runner.os, "cpu_count", lambda: 1)
    assert runner.default_jobs() == 4
    monkeypatch.setattr(runner.os, "cpu_count", lambda: 64)
    assert runner.default_jobs() == 8
    helps = [a.help or "" for sub in build_parser()._subparsers._group_actions  # type: ignore[union-attr]
             for p in sub.choices.values() for a in p._actions if "--jobs" in a.option_strings]
    assert helps and all("four times the CPUs, at most 8" in h for h in helps), helps
    doc = (Path(__file__).resolve().parent.parent / "docs" / "custom-cases.md").read_text()
    assert "four times the CPUs, at most 8" in " ".join(doc.split())


def test_ctrl_c_while_a_case_is_launched_marks_it_not_run(monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    # a signal inside Thread.start(): the case is in neither list yet (was a KeyError)
    launch = runner._Running.launch.__func__  # type: ignore[attr-defined]
    calls: list[str] = []

    def interrupted_second(cls: Any, case: Case, *args: Any) -> Any:
        calls.append(case.id)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return launch(cls, case, *args)

    monkeypatch.setattr(runner._Running, "launch", classmethod(interrupted_second))
    cases = [_case(c, lambda ctx: time.sleep(0.2)) for c in "abc"]
    with pytest.raises(interrupts.Interrupted) as info:
        run_target(cases, _Target(), kind="server", protocol="redirector", jobs=3)
    verdicts = [str(r.verdict) for r in info.value.partial.results]
    assert verdicts == ["INTERRUPTED", "NOT-RUN", "NOT-RUN"], verdicts


def test_a_case_over_budget_still_blocks_what_it_conflicts_with(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "CASE_BUDGET_S", 0.3)
    clock = CaseClock()
    cases = [_case("stuck", clock.body("stuck", 1.0), "user-state"),
             _case("free", clock.body("free", 0.05)),
             _case("after", clock.body("after", 0.05), "user-state")]
    out = run_target(cases, _Target(), kind="server", protocol="redirector", jobs=3)
    assert [str(r.verdict) for r in out.results] == ["ERROR", "PASS", "PASS"]
    assert not clock.overlap("stuck", "after")  # it waited for stuck's body to end
    assert clock.overlap("stuck", "free")


@pytest.mark.parametrize("slots", [1, 2])
def test_valgrind_cases_take_at_most_its_slots_at_once(slots: int,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.SLOTS, "valgrind", slots)
    clock = CaseClock()
    vg = [_case(f"v{i}", clock.body(f"v{i}", 0.3), "valgrind") for i in range(4)]
    plain = [_case(f"p{i}", clock.body(f"p{i}", 0.3)) for i in range(2)]
    run_target(vg + plain, _Target(), kind="module", protocol="redirector", jobs=8)
    spans = [clock.spans[f"v{i}"] for i in range(4)]
    most = max(sum(1 for a, b in spans if a <= start < b) for start, _ in spans)
    assert most == slots  # as many as it has, never more
    assert clock.overlaps("p0")  # the others run beside them
    assert not registry.Case.conflicts(vg[0], vg[1])  # counted, not paired


def test_a_case_over_budget_holds_on_across_the_segments_of_a_server_target(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """By default a server target runs segment by segment (its idle-client batch apart):
    a case past its budget still blocks the next segment's conflicting cases."""
    monkeypatch.setattr(runner, "CASE_BUDGET_S", 0.3)
    clock = CaseClock()
    cases = [_case("stuck", clock.body("stuck", 1.0), "timing"),
             _case("user", clock.body("user", 0.05), "user-state"),
             _case("idle-a", clock.body("idle-a", 0.05), "idle-clients"),
             _case("idle-b", clock.body("idle-b", 0.05), "idle-clients")]
    out = run_target(cases, _Target(), kind="server", protocol="redirector")
    assert str(out.results[0].verdict) == "ERROR"
    assert clock.overlaps("stuck") == []


def test_a_batch_case_over_budget_is_not_run_again_beside_its_first_body(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "CASE_BUDGET_S", 0.3)
    live: list[str] = []
    beside: list[list[str]] = []
    lock = threading.Lock()

    def body(cid: str, seconds: float) -> Callable[[Any], None]:
        def run(ctx: Any) -> None:
            with lock:
                beside.append([cid, *live])
                live.append(cid)
            time.sleep(seconds)
            with lock:
                live.remove(cid)
        return run

    cases = [_case("slow", body("slow", 0.8), "idle-clients"),
             _case("quick", body("quick", 0.05), "idle-clients")]
    out = run_target(cases, _Target(), kind="server", protocol="redirector")
    assert [str(r.verdict) for r in out.results] == ["ERROR", "PASS"]
    reruns = [b for b in beside if b[0] == "slow"][1:]
    assert reruns and all(b == ["slow"] for b in reruns), beside  # alone, as it says


def test_ctrl_c_in_a_batch_keeps_no_unchecked_result() -> None:
    """A batch case that ended before Ctrl-C was never checked against the batch's rules
    (under a second it does not count): it is INTERRUPTED, not its PASS."""
    cases = [_case("fast", lambda ctx: None, "idle-clients"),
             _case("long", lambda ctx: time.sleep(30), "idle-clients"),
             _case("after", lambda ctx: None)]
    partial = _stopped_after(0.5, cases)
    assert [str(r.verdict) for r in partial.results] == ["INTERRUPTED", "INTERRUPTED",
                                                          "NOT-RUN"]


def _stopped_after(seconds: float, cases: list[Case], jobs: int | None = None) -> Any:
    """The partial result of a server target's run that Ctrl-C stops after ``seconds``."""
    timer = _signal_soon(signal.SIGINT, seconds)
    try:
        with pytest.raises(interrupts.Interrupted) as info, interrupts.guard():
            run_target(cases, _Target(), kind="server", protocol="redirector", jobs=jobs)
    finally:
        timer.cancel()
    return info.value.partial
