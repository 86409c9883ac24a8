"""The machine-wide gate of ``run --parallel``: what runs alone, or under valgrind, holds
across processes (two Gate objects on one directory stand for two processes: flock
locks of separate opens conflict as between processes)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from case_clock import CaseClock

from pamconform.core import gate as lane_gate
from pamconform.core import registry
from pamconform.core.registry import Case
from pamconform.core.runner import run_target
from pamconform.core.verdicts import Severity


def _case(cid: str, func: Callable[[Any], None] = lambda ctx: None,
          exclusive: tuple[str, ...] = ()) -> Case:
    return Case(cid, "R-X", Severity.MUST, cid, "test", "redirector", "server", func, "t",
                exclusive)


@pytest.fixture
def gate_dir(tmp_path: Path) -> Path:
    path = tmp_path / "gate"
    path.mkdir(mode=0o700)
    return path


def test_plain_cases_share_and_one_that_runs_alone_waits_for_them(gate_dir: Path) -> None:
    a, b = lane_gate.Gate(gate_dir), lane_gate.Gate(gate_dir)
    first = a.try_enter(0, _case("a"))
    second = b.try_enter(0, _case("b"))
    assert first is not None and second is not None
    timing = _case("t", exclusive=("timing",))
    assert a.try_enter(1, timing) is None  # b's case still runs
    second.release()
    first.release()
    alone = a.try_enter(1, timing)
    assert alone is not None
    assert b.try_enter(1, _case("c")) is None  # nothing beside it
    alone.release()
    assert b.try_enter(1, _case("c")) is not None


def test_a_waiting_alone_case_is_not_starved_by_new_ones(gate_dir: Path) -> None:
    a, b = lane_gate.Gate(gate_dir), lane_gate.Gate(gate_dir)
    running = b.try_enter(0, _case("long"))
    assert running is not None
    assert a.try_enter(7, _case("t", exclusive=("timing",))) is None  # waits, in line
    assert b.try_enter(1, _case("new")) is None  # may not overtake it
    running.release()
    alone = a.try_enter(7, _case("t", exclusive=("timing",)))
    assert alone is not None
    alone.release()
    assert b.try_enter(1, _case("new")) is not None


def test_a_case_alone_in_its_own_target_does_not_hold_the_others(gate_dir: Path) -> None:
    a, b = lane_gate.Gate(gate_dir), lane_gate.Gate(gate_dir)
    whole_target = a.try_enter(0, _case("stack", exclusive=("target",)))
    assert whole_target is not None
    beside = b.try_enter(0, _case("other"))
    assert beside is not None
    for p in (whole_target, beside):
        p.release()


def test_the_turnstile_is_let_go_while_a_long_case_runs_elsewhere(gate_dir: Path) -> None:
    now = [100.0]
    a, b = lane_gate.Gate(gate_dir, clock=lambda: now[0]), lane_gate.Gate(gate_dir)
    timing = _case("t", exclusive=("timing",))
    long_case = b.try_enter(0, _case("long"))
    assert long_case is not None
    assert a.try_enter(5, timing) is None
    assert b.try_enter(1, _case("short")) is None  # held up behind the timing case
    now[0] += lane_gate.TURNSTILE_HOLD_S
    assert a.try_enter(5, timing) is None  # gives up its place for as long
    short = b.try_enter(1, _case("short"))
    assert short is not None
    short.release()
    now[0] += lane_gate.TURNSTILE_HOLD_S / 2
    assert a.try_enter(5, timing) is None
    second = b.try_enter(2, _case("short"))
    assert second is not None  # still let go
    second.release()
    now[0] += lane_gate.TURNSTILE_HOLD_S / 2
    assert a.try_enter(5, timing) is None  # in line again
    assert b.try_enter(3, _case("short")) is None
    long_case.release()
    alone = a.try_enter(5, timing)  # nothing runs elsewhere any more
    assert alone is not None
    alone.release()


def test_withdraw_gives_up_the_place_in_line(gate_dir: Path) -> None:
    a, b = lane_gate.Gate(gate_dir), lane_gate.Gate(gate_dir)
    running = b.try_enter(0, _case("long"))
    assert running is not None
    assert a.try_enter(3, _case("t", exclusive=("timing",))) is None
    a.withdraw()
    assert b.try_enter(1, _case("new")) is not None


@pytest.mark.parametrize("slots", [1, 2])
def test_valgrind_cases_take_its_slots_over_processes(gate_dir: Path, slots: int,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.SLOTS, "valgrind", slots)
    a, b = lane_gate.Gate(gate_dir), lane_gate.Gate(gate_dir)
    vg = ("valgrind",)
    held = [a.try_enter(i, _case(f"m{i}", exclusive=vg)) for i in range(slots)]
    assert all(p is not None for p in held)
    assert b.try_enter(0, _case("over", exclusive=vg)) is None  # every slot is taken
    other = b.try_enter(1, _case("plain"))
    assert other is not None  # other cases run beside them
    first = held[0]
    assert first is not None
    first.release()
    again = b.try_enter(0, _case("over", exclusive=vg))
    assert again is not None
    for p in (other, again, *held[1:]):
        assert p is not None
        p.release()
        p.release()  # idempotent


def test_wait_shared_gives_up_its_place_in_a_slots_line(
        gate_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A wait for a slot that times out leaves the line: else no other lane got a slot
    again (``works_again()`` in a case that holds one)."""
    monkeypatch.setenv(lane_gate.ENV, str(gate_dir))
    monkeypatch.setitem(registry.SLOTS, "valgrind", 1)
    monkeypatch.setattr(lane_gate, "RETRY_S", 0.05)
    holder = lane_gate.Gate(gate_dir)
    held = holder.try_enter(0, _case("vg", exclusive=("valgrind",)))
    assert held is not None
    assert lane_gate.wait_shared(["valgrind"], wait_s=0.3) is None  # every slot taken
    held.release()
    other = lane_gate.Gate(gate_dir).try_enter_shared(["valgrind"])
    assert other is not None
    other.release()


@pytest.mark.parametrize("slots", [1, 2])
def test_a_process_waiting_for_a_slot_gets_the_next_one_freed(
        gate_dir: Path, slots: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.SLOTS, "valgrind", slots)
    now = [0.0]
    a, b = lane_gate.Gate(gate_dir, clock=lambda: now[0]), lane_gate.Gate(gate_dir)
    vg = ("valgrind",)
    held = [a.try_enter(i, _case(f"a{i}", exclusive=vg)) for i in range(slots)]
    assert all(p is not None for p in held)
    assert b.try_enter(0, _case("b", exclusive=vg)) is None  # b now waits in line
    freed = held.pop()
    assert freed is not None
    freed.release()
    assert a.try_enter(9, _case("a-more", exclusive=vg)) is None  # b is first in line
    got = b.try_enter(0, _case("b", exclusive=vg))
    assert got is not None  # the slot freed is b's
    assert b.try_enter(1, _case("b2", exclusive=vg)) is None  # nothing free: b queues again
    b.withdraw()  # a target done gives up its place
    got.release()
    again = a.try_enter(9, _case("a-more", exclusive=vg))
    assert again is not None
    for p in (again, *held):
        assert p is not None
        p.release()


def test_a_place_in_a_slots_line_is_let_go_after_a_while(
        gate_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.SLOTS, "valgrind", 1)
    now = [0.0]
    a, b = lane_gate.Gate(gate_dir), lane_gate.Gate(gate_dir, clock=lambda: now[0])
    vg = ("valgrind",)
    long_run = a.try_enter(0, _case("long", exclusive=vg))
    assert long_run is not None
    assert b.try_enter(0, _case("b", exclusive=vg)) is None  # in line
    now[0] = lane_gate.TURNSTILE_HOLD_S
    assert b.try_enter(0, _case("b", exclusive=vg)) is None  # lets go of its place
    long_run.release()
    got = a.try_enter(1, _case("a", exclusive=vg))
    assert got is not None  # nobody in line: a may take it
    got.release()


def test_the_gate_directory_must_be_private(tmp_path: Path) -> None:
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    open_dir.chmod(0o755)
    with pytest.raises(lane_gate.GateError, match="private"):
        lane_gate.Gate(open_dir)
    link = tmp_path / "link"
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    link.symlink_to(private)
    with pytest.raises(lane_gate.GateError):
        lane_gate.Gate(link)


def test_without_the_variable_there_is_no_gate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(lane_gate.ENV, raising=False)
    assert lane_gate.from_env() is None


class _Target:
    def __init__(self, name: str) -> None:
        self.name = name


def _two_targets_side_by_side(log: CaseClock) -> None:
    """Target 1: a timing case among plain ones and a valgrind case; target 2: plain cases
    and a valgrind case; each in its own thread (as the lanes run in their processes)."""
    one = [_case("1-a", log.body("1-a", 0.3)), _case("1-timing", log.body("1-timing", 0.3),
                                                    ("timing",)),
           _case("1-vg", log.body("1-vg", 0.4), ("valgrind",)), _case("1-b", log.body("1-b", 0.2))]
    two = [_case("2-vg", log.body("2-vg", 0.4), ("valgrind",))] + \
        [_case(f"2-{i}", log.body(f"2-{i}", 0.25)) for i in range(6)]
    results: list[Any] = []

    def check(cases: list[Case], name: str) -> None:
        results.append(run_target(cases, _Target(name), kind="module", protocol="redirector",
                                  jobs=4))

    threads = [threading.Thread(target=check, args=(c, n)) for c, n in ((one, "t1"), (two, "t2"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 2
    assert all(str(r.verdict) == "PASS" for t in results for r in t.results)


def test_run_target_keeps_the_gate_across_targets(gate_dir: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(lane_gate.ENV, str(gate_dir))
    monkeypatch.setitem(registry.SLOTS, "valgrind", 1)
    log = CaseClock()
    _two_targets_side_by_side(log)
    assert log.overlaps("1-timing") == []  # alone on the machine
    assert "2-vg" not in log.overlaps("1-vg")  # one valgrind slot
    assert log.overlaps("1-a")  # the rest does run side by side


def test_without_the_gate_the_targets_know_nothing_of_each_other(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(lane_gate.ENV, raising=False)
    log = CaseClock()
    _two_targets_side_by_side(log)
    assert log.overlaps("1-timing")  # what the gate is for


def test_gate_files_are_private(gate_dir: Path) -> None:
    p = lane_gate.Gate(gate_dir).try_enter(0, _case("x", exclusive=("valgrind",)))
    assert p is not None
    p.release()
    for entry in gate_dir.iterdir():
        assert entry.stat().st_mode & 0o777 == 0o600, entry
    assert os.stat(gate_dir).st_mode & 0o777 == 0o700


def test_setting_a_target_up_holds_a_pass_until_its_cases_start(
        gate_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(lane_gate.ENV, str(gate_dir))
    other = lane_gate.Gate(gate_dir)
    timing = _case("t", exclusive=("timing",))
    seen: list[bool] = []

    def first_case(ctx: Any) -> None:  # by now the set-up pass is gone
        probe = lane_gate.Gate(gate_dir)
        seen.append(probe.try_enter(99, timing) is None)  # this case's own pass holds it
        probe.withdraw()

    with lane_gate.setting_up():
        assert other.try_enter(1, timing) is None  # a build runs: no timing case beside it
        other.withdraw()
        run_target([_case("only", first_case)], _Target("t"), kind="module",
                   protocol="redirector")
        alone = other.try_enter(2, timing)
        assert alone is not None  # the cases ran and ended: nothing held any more
        alone.release()
    assert seen == [True]


def test_setting_up_waits_for_a_timing_case_elsewhere_then_goes_on(
        gate_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(lane_gate.ENV, str(gate_dir))
    timing = lane_gate.Gate(gate_dir).try_enter(0, _case("t", exclusive=("timing",)))
    assert timing is not None
    start = time.monotonic()
    with lane_gate.setting_up(wait_s=0.6):
        assert time.monotonic() - start >= 0.5  # waited, bounded
    timing.release()


def _beside_a_timing_case(case: Case, timing_body: Callable[[Any], None]) -> None:
    """Run ``case`` (target t1) while target t2, started 0.3 s later in another thread
    (as another lane), runs one timing case; both targets PASS."""
    results: list[Any] = []

    def second_target() -> None:
        time.sleep(0.3)  # the first target's case runs by then
        results.append(run_target([_case("2-timing", timing_body, ("timing",))],
                                  _Target("t2"), kind="module", protocol="redirector",
                                  jobs=2))

    other = threading.Thread(target=second_target)
    other.start()
    results.append(run_target([case], _Target("t1"), kind="module", protocol="redirector",
                              jobs=2))
    other.join(30)
    assert [str(r.verdict) for t in results for r in t.results] == ["PASS", "PASS"]


@pytest.mark.parametrize("only_waits", [True, False])
def test_a_case_that_only_waits_lets_timing_cases_elsewhere_run(
        gate_dir: Path, monkeypatch: pytest.MonkeyPatch, only_waits: bool) -> None:
    monkeypatch.setenv(lane_gate.ENV, str(gate_dir))
    log = CaseClock()
    waiting = log.body("1-wait", 1.5)

    def wait(ctx: Any) -> None:
        if only_waits:
            ctx.only_waits()  # as the nslcd N-M2 hangs do once their logins are armed
        waiting(ctx)

    _beside_a_timing_case(_case("1-wait", wait), log.body("2-timing", 0.2))
    assert log.overlap("1-wait", "2-timing") is only_waits


def test_a_case_that_works_again_waits_for_a_timing_case_elsewhere(
        gate_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(lane_gate.ENV, str(gate_dir))
    log = CaseClock()
    regained: list[float] = []

    def waits_then_works(ctx: Any) -> None:
        ctx.only_waits()
        time.sleep(0.6)  # the timing case elsewhere starts meanwhile
        ctx.works_again()
        regained.append(time.monotonic())

    _beside_a_timing_case(_case("1", waits_then_works), log.body("2-timing", 1.0))
    assert regained and regained[0] >= log.spans["2-timing"][1]  # not beside it


@pytest.mark.parametrize("measured", [True, False])
def test_a_timing_case_after_its_measurement_lets_cases_elsewhere_run(
        gate_dir: Path, monkeypatch: pytest.MonkeyPatch, measured: bool) -> None:
    """``ctx.measured()`` (R-M2's alive check after the hang logins): from there on the
    timing case runs beside other targets' cases; its measurement did not."""
    monkeypatch.setenv(lane_gate.ENV, str(gate_dir))
    log = CaseClock()
    measure, check = log.body("1-measure", 0.6), log.body("1-check", 1.5)
    holding = threading.Event()

    def timing(ctx: Any) -> None:
        holding.set()
        measure(ctx)
        if measured:
            ctx.measured()
        check(ctx)

    def second_target() -> None:
        assert holding.wait(30)  # the timing case holds the machine from here on
        run_target([_case("2-plain", log.body("2-plain", 0.3))], _Target("t2"),
                   kind="module", protocol="redirector")

    other = threading.Thread(target=second_target)
    other.start()
    result = run_target([_case("1", timing, ("timing",))], _Target("t1"), kind="module",
                        protocol="redirector")
    other.join(30)
    assert [str(r.verdict) for r in result.results] == ["PASS"]
    assert not log.overlap("1-measure", "2-plain")
    assert log.overlap("1-check", "2-plain") is measured


def test_a_line_no_case_asks_for_is_let_go_at_the_end_of_a_round(
        gate_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.SLOTS, "valgrind", 1)
    a, b = lane_gate.Gate(gate_dir), lane_gate.Gate(gate_dir)
    vg = ("valgrind",)
    held = a.try_enter(0, _case("a", exclusive=vg))
    assert held is not None
    b.begin_round()
    assert b.try_enter(0, _case("b", exclusive=vg)) is None  # in line
    b.end_round()
    held.release()
    assert a.try_enter(1, _case("a2", exclusive=vg)) is None  # b keeps its place
    b.begin_round()
    b.end_round()  # b's valgrind case was not tried this round (its own target's reasons)
    again = a.try_enter(1, _case("a2", exclusive=vg))
    assert again is not None
    again.release()
