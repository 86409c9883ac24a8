"""``run --parallel N``: targets in lanes side by side, one report as from one lane."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from pamconform.cli import parallel_run
from pamconform.cli.console import Console
from pamconform.cli.targets import Step
from pamconform.core.registry import Case
from pamconform.core.runner import TargetResult
from pamconform.core.verdicts import Severity

ROOT = Path(__file__).resolve().parents[1]
#: Quick cases of the bundled server targets (one declared to run alone), and of the
#: nslcd lab's targets (listed as skipped: --no-lab).
CASES = ["--cases", "redir.server.grant-valid", "--cases", "redir.server.deny-wrong-password",
         "--cases", "redir.server.timing-unknown-vs-wrong", "--cases",
         "token.server.accept-exact-token", "--cases", "token.server.dead-after-failure",
         "--cases", "nslcd.server.deny-blank-user", "--cases", "nslcd.module.daemon-b*"]


def pamconform(*args: str, tmp: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), TMPDIR=str(tmp))
    return subprocess.run([sys.executable, "-m", "pamconform.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


def _report(directory: Path) -> dict[str, Any]:
    return json.loads((directory / "index.json").read_text())  # type: ignore[no-any-return]


def _verdicts(data: dict[str, Any]) -> list[tuple[str, list[tuple[str, str]]]]:
    return [(t["name"], [(c["id"], c["verdict"]) for c in t["cases"]]) for t in data["targets"]]


def test_lanes_give_the_report_of_one_lane(tmp_path: Path) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    one, two = tmp_path / "one", tmp_path / "two"
    seq = pamconform("run", "--no-lab", *CASES, "--report", str(one), tmp=scratch)
    par = pamconform("run", "--no-lab", *CASES, "--parallel", "3", "--report", str(two),
                     tmp=scratch)
    assert seq.returncode == 0, seq.stdout + seq.stderr
    assert par.returncode == 0, par.stdout + par.stderr
    assert _verdicts(_report(two)) == _verdicts(_report(one))
    head = par.stdout.splitlines()[0]
    assert head.startswith("== 5 targets in 3 lanes: lane 1: "), head
    assert "reference-server | [" in par.stdout  # progress lines name their target
    assert "reference-token-server | [" in par.stdout
    assert par.stdout.count("\nreport: ") == 1 and str(two) in par.stdout
    assert "server redirector reference-server: " in par.stdout  # the summaries, at the end
    for path in [two, *two.iterdir()]:
        assert path.stat().st_mode & 0o077 == 0, path
    assert list(scratch.iterdir()) == []  # the lanes' reports and the gate are gone
    timing = {t["name"]: t["timing"]["wall_s"] for t in _report(two)["targets"]}
    assert timing["reference-server"] > 0


def test_a_failing_target_sets_the_exit_code_as_in_one_lane(tmp_path: Path) -> None:
    out = tmp_path / "report"
    proc = pamconform("run", "--no-lab", "--gallery", "--cases", "redir.server.grant-valid",
                      "--cases", "redir.server.polarity", "--parallel", "4", "--report",
                      str(out), tmp=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    verdicts = dict(_verdicts(_report(out)))
    assert dict(verdicts["faulty:inverted-polarity"])["redir.server.polarity"] == "FAIL"
    assert set(dict(verdicts["reference-server"]).values()) == {"PASS"}


#: The reference server's second case waits out a 60 s idle limit: a run to stop there.
STOPPABLE = ["--cases", "redir.server.grant-valid", "--cases",
             "redir.server.silent-client-timeout", "--cases", "token.server.accept-exact-token",
             "--idle-limit", "60", "--parallel", "2"]


def _started(tmp_path: Path, report: Path,
             *extra: str) -> tuple[subprocess.Popen[str], list[str], list[int]]:
    """A 2-lane run, once the reference server's first case has finished (its second
    now waits); the lines seen so far and the lanes' processes then."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), TMPDIR=str(tmp_path), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pamconform.cli", "run", "--no-lab", *STOPPABLE, *extra,
         "--report", str(report)], cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        seen.append(proc.stdout.readline())
        if "reference-server | [1/2]" in seen[-1] or not seen[-1]:
            break
    lanes = _children(proc.pid)
    time.sleep(0.5)  # the second case under way
    return proc, seen, lanes


def test_ctrl_c_stops_every_lane_and_reports_what_finished(tmp_path: Path) -> None:
    report = tmp_path / "report"
    proc, seen, lanes = _started(tmp_path, report, "--cases",
                                 "token.server.dead-after-failure")
    try:
        assert "reference-server | [1/2]" in seen[-1], "".join(seen)
        assert len(lanes) == 2, lanes
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert proc.returncode == 130, "".join(seen) + out + err
    assert not any(Path(f"/proc/{pid}").exists() for pid in lanes)
    targets = dict(_verdicts(_report(report)))
    assert dict(targets["reference-server"]) == {
        "redir.server.grant-valid": "PASS", "redir.server.silent-client-timeout": "INTERRUPTED"}
    assert _report(report)["interrupted"] == "SIGINT"
    assert "stopped by SIGINT" in out
    assert [p for p in tmp_path.iterdir() if p.name.startswith("pamconform-lanes-")] == []


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:  # ended meanwhile (the token server's lane is quick)
        return b""


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def test_a_lane_given_an_unknown_target_is_one_line(tmp_path: Path) -> None:
    proc = pamconform("run", "--no-lab", "--lane-targets", '["nope"]', tmp=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("pamconform: error: --lane-targets: 'nope' is not a "
                                   "target of this run")


def _step(name: str, cases: int = 1) -> Step:
    def check(cases: list[Any]) -> TargetResult:
        raise AssertionError("not run here")

    fake = [Case(f"c{i}", "R-X", Severity.MUST, "t", "r", "redirector", "server",
                 lambda ctx: None, "t") for i in range(cases)]
    return Step(name, "server", "redirector", fake, check)


def test_lanes_are_balanced_and_keep_the_plan_order() -> None:
    steps = [_step(n) for n in ("a", "lab1", "b", "lab2", "c")]
    cost = {"a": 10.0, "lab1": 30.0, "lab2": 30.0, "b": 40.0, "c": 20.0}
    lanes = parallel_run.assign(steps, 2, lambda s: cost[s.name])
    assert [[s.name for s in lane] for lane in lanes] == [["a", "b", "c"], ["lab1", "lab2"]]
    assert len(parallel_run.assign(steps, 9, lambda s: 1.0)) == 5  # no empty lane


def _earlier(tmp_path: Path, targets: list[dict[str, Any]]) -> argparse.Namespace:
    (tmp_path / "index.json").write_text(json.dumps({"targets": targets}))
    return argparse.Namespace(shard_weights=tmp_path / "index.json")


def test_lanes_weigh_a_target_by_its_earlier_wall_time(tmp_path: Path) -> None:
    # a module target ran its 4 cases side by side: 40 s of cases in a 12 s wall
    args = _earlier(tmp_path, [
        {"name": "mod", "timing": {"wall_s": 12.0},
         "cases": [{"id": f"c{i}", "duration_s": 10.0} for i in range(4)]},
        {"name": "old", "cases": [{"id": "c0", "duration_s": 3.0}]},  # no wall recorded
    ])
    cost = parallel_run._costs([_step("mod", 4), _step("new", 2), _step("old")], args)
    assert cost(_step("mod", 4)) == pytest.approx(12.0)  # not 40
    assert cost(_step("mod", 2)) == pytest.approx(6.0)  # half its case time: half its wall
    # not in that report, or no wall time there: the estimate (set-up and each case's)
    assert cost(_step("new", 2)) == pytest.approx(0.5 + 2 * 0.4)
    assert cost(_step("old")) == pytest.approx(0.5 + 3.0)
    more = parallel_run._costs([_step("mod", 5)], args)  # a case that report lacks
    assert more(_step("mod", 5)) == pytest.approx(0.5 + 4 * 10.0 + 0.4)


def test_a_first_run_balances_the_bundled_targets_by_the_reference_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No report yet (a fresh clone): the bundled targets weigh what they took on the
    development machine; a target of the user's own is estimated."""
    monkeypatch.chdir(tmp_path)  # no reports/latest here
    shipped = json.loads(parallel_run.REFERENCE_RUN.read_text())["targets"]
    walls = {t["name"]: (t["timing"]["wall_s"], [c["id"] for c in t["cases"]]) for t in shipped}
    wall, ids = walls["lab:pam_ldap"]
    step = _step("lab:pam_ldap", len(ids))
    step.cases = [dataclasses.replace(c, id=cid) for c, cid in zip(step.cases, ids, strict=True)]
    cost = parallel_run._costs([step, _step("mine", 2)], argparse.Namespace(shard_weights=None))
    assert cost(step) == pytest.approx(wall)
    assert cost(_step("mine", 2)) == pytest.approx(0.5 + 2 * 0.4)
    # a last report without that target (a --no-lab run): still the reference run's wall
    args = _earlier(tmp_path, [{"name": "mine", "timing": {"wall_s": 3.0},
                                "cases": [{"id": "c0", "duration_s": 1.0}]}])
    cost = parallel_run._costs([step, _step("mine")], args)
    assert cost(step) == pytest.approx(wall) and cost(_step("mine")) == pytest.approx(3.0)


def test_the_reference_run_names_the_targets_run_plans() -> None:
    """A renamed or new bundled target must be measured again (bench_parallel.py
    --write-reference), or the first run's lanes are guessed."""
    from pamconform.cli import run
    from pamconform.cli.main import build_parser

    args = build_parser().parse_args(["run"])
    planned = {s.name for s in run.plan(args, Console(quiet=True), ["bookworm"])}
    shipped = json.loads(parallel_run.REFERENCE_RUN.read_text())["targets"]
    assert {t["name"] for t in shipped} == planned
    assert all(t["timing"]["wall_s"] > 0 for t in shipped)


def test_lanes_of_a_run_with_an_unreadable_report_are_estimated(tmp_path: Path) -> None:
    (tmp_path / "index.json").write_text("{not json")
    cost = parallel_run._costs([_step("a", 2)],
                               argparse.Namespace(shard_weights=tmp_path / "index.json"))
    assert cost(_step("a", 2)) == pytest.approx(0.5 + 2 * 0.4)


def test_a_lane_that_broke_off_is_named(tmp_path: Path) -> None:
    proc = subprocess.Popen(["true"])
    proc.wait(10)
    lane = parallel_run._Lane(2, [_step("x")], tmp_path / "none", proc)
    results, broken = parallel_run._collect([lane], [_step("x", cases=2)])
    assert broken == ["lane 2 ended with exit code 0 before it had checked x (its lines "
                      "above say why)"]
    # in the report all the same, every case ERROR: never a smaller run that looks clean
    assert [(t.name, [str(r.verdict) for r in t.results]) for t in results] == \
        [("x", ["ERROR", "ERROR"])]
    assert results[0].results[0].message.startswith("not checked: lane 2 ended with exit")


def test_run_lanes_with_one_target_is_one_lane(monkeypatch: pytest.MonkeyPatch) -> None:
    called = []
    monkeypatch.setattr("pamconform.cli.targets.run_steps",
                        lambda *a, **k: called.append(a) or 0)
    steps = [_step("only")]

    class Args:
        parallel = 4

    assert parallel_run.run_lanes(steps, Args(), Console(), None) == 0  # type: ignore[arg-type]
    assert len(called) == 1


def test_a_lab_lane_that_cannot_run_is_exit_3_with_the_others_reported(tmp_path: Path) -> None:
    env_tmp = tmp_path / "tmp"
    env_tmp.mkdir()
    out = tmp_path / "report"
    env = dict(os.environ, PYTHONPATH=str(ROOT), TMPDIR=str(env_tmp),
               DOCKER_HOST=f"unix://{tmp_path}/no-engine.sock")
    proc = subprocess.run(
        [sys.executable, "-m", "pamconform.cli", "run", "--parallel", "2", "--cases",
         "redir.server.grant-valid", "--cases", "redir.e2e.ssh-grant", "--cases",
         "token.server.accept-exact-token", "--report", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "no Docker engine answers" in proc.stdout  # the lane's own line, passed on
    assert "before it had checked reference-module" in proc.stdout
    targets = dict(_verdicts(_report(out)))
    assert list(targets) == ["reference-server", "reference-token-server", "reference-module"]
    assert dict(targets["reference-module"]) == {"redir.e2e.ssh-grant": "ERROR"}
    assert list(env_tmp.iterdir()) == []


def test_a_lane_stopped_on_its_own_is_no_verdict(tmp_path: Path) -> None:
    report = tmp_path / "report"
    proc, seen, _ = _started(tmp_path, report)
    try:
        lane = [pid for pid in _children(proc.pid) if b"reference-server" in _cmdline(pid)]
        assert len(lane) == 1, "".join(seen)
        os.kill(lane[0], signal.SIGTERM)  # the lane alone, not the run
        out, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert proc.returncode == 3, "".join(seen) + out + err
    assert ("was stopped by SIGTERM: the cases of reference-server it had not finished are "
            "INTERRUPTED or NOT-RUN") in out
    targets = dict(_verdicts(_report(report)))
    assert dict(targets["reference-server"])["redir.server.silent-client-timeout"] == \
        "INTERRUPTED"
    assert dict(targets["reference-token-server"]) == {"token.server.accept-exact-token": "PASS"}


def test_shards_run_in_lanes_merge_into_the_unsharded_run(tmp_path: Path) -> None:
    picks = [*CASES[:10], "--cases", "nslcd.server.deny-blank-user"]
    parts = []
    for k in (1, 2):
        parts.append(tmp_path / f"part{k}")
        proc = pamconform("run", "--no-lab", *picks, "--shard", f"{k}/2", "--parallel", "2",
                          "--report", str(parts[-1]), tmp=tmp_path)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert _report(parts[-1])["shard"]["part"] == f"{k}/2"
    merged, whole = tmp_path / "merged", tmp_path / "whole"
    assert pamconform("merge", *map(str, parts), "--report", str(merged),
                      tmp=tmp_path).returncode == 0
    assert pamconform("run", "--no-lab", *picks, "--report", str(whole),
                      tmp=tmp_path).returncode == 0
    assert _verdicts(_report(merged)) == _verdicts(_report(whole))


def test_output_that_goes_away_does_not_hang_the_lanes(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT), TMPDIR=str(tmp_path))
    started = time.monotonic()
    proc = subprocess.run(
        f"{sys.executable} -m pamconform.cli run --no-lab --parallel 2 "
        "--cases 'redir.server.deny-*' --cases 'token.server.*' "
        "--exclude-cases 'redir.server.deny-stalled-*' "
        "--exclude-cases 'redir.server.deny-lookalike-*' --exclude-cases token.server.expiry "
        "--exclude-cases 'token.server.s*-client-*' "
        f"--report {tmp_path}/report | head -1", shell=True, cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=300, check=False)
    assert proc.stdout.startswith("== 2 targets in 2 lanes"), proc.stdout + proc.stderr
    assert time.monotonic() - started < 240
    assert [p for p in tmp_path.iterdir() if p.name.startswith("pamconform-lanes-")] == []
