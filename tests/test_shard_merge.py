"""``--shard K/N`` and ``pamconform merge``: shards merged are the unsharded run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pamconform.core import shard
from pamconform.core.errors import UsageError

ROOT = Path(__file__).resolve().parents[1]
#: Cases of two reference servers (the bundled redirector and token servers), no lab; the
#: ones that take seconds by design (stalled clients, look-alike runs) are left out.
SELECTION = ["--no-lab", "--cases", "redir.server.grant-valid", "--cases",
             "redir.server.deny-*", "--cases", "token.server.c*",
             "--exclude-cases", "redir.server.deny-stalled-*",
             "--exclude-cases", "redir.server.deny-lookalike-*", "--quiet"]


def pamconform(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "pamconform.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def test_assignment_is_stable_complete_and_balanced() -> None:
    pairs = [(t, f"case-{i}") for t in ("a", "b", "c") for i in range(20)]
    one = shard.assign(pairs, 4)
    assert one == shard.assign(list(reversed(pairs)), 4)  # the order given does not matter
    assert set(one) == set(pairs) and set(one.values()) == {1, 2, 3, 4}
    sizes = [list(one.values()).count(k) for k in (1, 2, 3, 4)]
    assert max(sizes) - min(sizes) <= 1
    # weights: the heavy case gets a shard to itself
    heavy = {("a", "case-0"): 30.0}
    by = shard.assign(pairs, 3, weights=heavy)
    alone = by[("a", "case-0")]
    assert [p for p, k in by.items() if k == alone] == [("a", "case-0")]
    # a set-up cost keeps a lab target's cheap cases together
    lab = [("lab", f"c{i}") for i in range(6)] + [("srv", f"c{i}") for i in range(6)]
    kept = shard.assign(lab, 2, setup={"lab": 30.0})
    assert len({kept[p] for p in lab if p[0] == "lab"}) == 1


@pytest.mark.parametrize("text", ["0/3", "4/3", "3", "a/b", "1/0", "-1/2"])
def test_bad_shard_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError):
        shard.parse(text)


def _strip_times(data: dict) -> dict:
    """The report without what differs between any two runs (times, evidence)."""
    out = {k: v for k, v in data.items() if k not in ("started", "duration_s", "merged")}
    out["targets"] = [
        {**{k: v for k, v in t.items() if k != "timing"},
         "cases": [{k: v for k, v in c.items() if k not in ("duration_s", "evidence")}
                   for c in t["cases"]]}
        for t in data["targets"]]
    return out


def test_three_shards_merged_are_the_unsharded_run(tmp_path: Path) -> None:
    whole = tmp_path / "whole"
    assert pamconform("run", *SELECTION, "--report", str(whole)).returncode == 0
    parts = []
    for k in (1, 2, 3):
        part = tmp_path / f"shard{k}"
        proc = pamconform("run", *SELECTION, "--shard", f"{k}/3", "--report", str(part))
        assert proc.returncode == 0, proc.stderr
        assert f"shard {k}/3: " in proc.stdout
        parts.append(part)
    shards = [json.loads((p / "index.json").read_text()) for p in parts]
    counts = [sum(len(t["cases"]) for t in s["targets"]) for s in shards]
    total = sum(len(ids) for ids in shards[0]["shard"]["plan"].values())
    assert sum(counts) == total >= 8 and all(counts)  # every pair once, each shard some
    merged = tmp_path / "merged"
    proc = pamconform("merge", *map(str, parts), "--report", str(merged))
    assert proc.returncode == 0, proc.stderr
    # pamconform diff sees no change at all
    proc = pamconform("diff", str(whole), str(merged), "--time-threshold", "1000")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "newly" not in proc.stdout.lower() and "added" not in proc.stdout.lower(), proc.stdout
    data = json.loads((merged / "index.json").read_text())
    unsharded = json.loads((whole / "index.json").read_text())
    assert _strip_times(data) == _strip_times(unsharded)
    # the evidence is the shards' own, untouched
    by_case = {(t["name"], c["id"]): c for s in shards for t in s["targets"] for c in t["cases"]}
    assert all(c == by_case[(t["name"], c["id"])] for t in data["targets"] for c in t["cases"])
    assert [s["part"] for s in data["merged"]["shards"]] == ["1/3", "2/3", "3/3"]
    assert (merged / "junit.xml").is_file() and (merged / "index.html").is_file()


def _shard_report(directory: Path, part: int, count: int = 2, version: str = "1.0",
                  plan: dict | None = None, cases: list[str] | None = None,
                  edit: Any = None, split: dict | None = None) -> Path:
    plan = plan or {"t": ["a", "b"]}
    split = split or {"t": ["1", "2"]}
    data = {"pamconform": version, "started": "2026-01-01T00:00:00+00:00", "duration_s": 1.0,
            "strict": False,
            "shard": {"part": f"{part}/{count}", "index": part, "count": count,
                      "plan_sha256": shard.digest(plan), "plan": plan,
                      "split_sha256": shard.digest(split)},
            "targets": [{"name": "t", "kind": "server", "protocol": "p",
                         "summary": {"PASS": 1},
                         "cases": [{"id": c, "rule": "R", "severity": "MUST", "title": c,
                                    "requirement": "", "suite": "s", "verdict": "PASS",
                                    "message": "", "duration_s": 0.1, "evidence": {}}
                                   for c in (cases or [])]}]}
    if edit is not None:
        edit(data)
    directory.mkdir()
    (directory / "index.json").write_text(json.dumps(data))
    return directory


@pytest.mark.parametrize(("second", "needle"), [
    ({"part": 2, "version": "2.0", "cases": ["b"]}, "made by pamconform 2.0"),
    ({"part": 2, "plan": {"t": ["a", "c"]}, "cases": ["c"]}, "a shard of another run"),
    ({"part": 1, "cases": ["b"]}, "shard 1/2 again"),
    ({"part": 2, "count": 3, "cases": ["b"]}, "a shard of another run"),
    ({"part": 2, "split": {"t": ["2", "2"]}, "cases": ["b"]}, "split among the shards otherwise"),
])
def test_merge_refuses_reports_that_do_not_belong_together(tmp_path, second, needle) -> None:
    a = _shard_report(tmp_path / "a", 1, cases=["a"])
    b = _shard_report(tmp_path / "b", **second)
    proc = pamconform("merge", str(a), str(b), "--report", str(tmp_path / "out"))
    assert proc.returncode == 2 and needle in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_merge_refuses_a_missing_shard_unless_forced(tmp_path) -> None:
    a = _shard_report(tmp_path / "a", 1, cases=["a"])
    proc = pamconform("merge", str(a), "--report", str(tmp_path / "out"))
    assert proc.returncode == 2 and "shard(s) 2 of 2 missing" in proc.stderr
    proc = pamconform("merge", str(a), "--report", str(tmp_path / "out"), "--force")
    assert proc.returncode == 0, proc.stderr
    data = json.loads((tmp_path / "out" / "index.json").read_text())
    assert [c["id"] for c in data["targets"][0]["cases"]] == ["a"]


def test_merge_never_takes_a_case_twice_nor_an_unsharded_report(tmp_path) -> None:
    a = _shard_report(tmp_path / "a", 1, cases=["a"])
    b = _shard_report(tmp_path / "b", 2, cases=["a", "b"])
    proc = pamconform("merge", str(a), str(b), "--report", str(tmp_path / "out"), "--force")
    assert proc.returncode == 2 and "case a of target t is also in another report" in proc.stderr
    plain = tmp_path / "plain"
    plain.mkdir()
    data = json.loads((a / "index.json").read_text())
    del data["shard"]
    (plain / "index.json").write_text(json.dumps(data))
    proc = pamconform("merge", str(a), str(plain), "--report", str(tmp_path / "out"))
    assert proc.returncode == 2 and "not a shard report" in proc.stderr


def _verdict(verdict: str, case: int = 0) -> Any:
    def edit(data: dict) -> None:
        data["targets"][0]["cases"][case]["verdict"] = verdict
    return edit


def test_merge_of_a_stopped_shard_exits_with_the_stop_code(tmp_path) -> None:
    def stopped(data: dict) -> None:
        data["interrupted"] = "SIGINT"
        data["targets"][0]["cases"][0]["verdict"] = "NOT-RUN"

    a = _shard_report(tmp_path / "a", 1, cases=["a"], edit=stopped)
    b = _shard_report(tmp_path / "b", 2, cases=["b"])
    proc = pamconform("merge", str(a), str(b), "--report", str(tmp_path / "out"))
    assert proc.returncode == 130, proc.stdout + proc.stderr
    assert "stopped by SIGINT" in proc.stdout


def test_merge_honours_the_shards_known_findings(tmp_path) -> None:
    def known(data: dict) -> None:
        _verdict("FAIL")(data)
        data["shard"]["known_failing"] = [["t", "a"]]

    b = _shard_report(tmp_path / "b", 2, cases=["b"])
    a = _shard_report(tmp_path / "a", 1, cases=["a"], edit=known)
    proc = pamconform("merge", str(a), str(b), "--report", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "known finding, not counted: t a" in proc.stdout
    # a FAIL no shard knew counts
    c = _shard_report(tmp_path / "c", 2, cases=["b"], edit=_verdict("FAIL"))
    proc = pamconform("merge", str(a), str(c), "--report", str(tmp_path / "out2"))
    assert proc.returncode == 1, proc.stdout + proc.stderr


def test_a_shard_run_records_its_known_findings(tmp_path) -> None:
    import argparse

    from pamconform import report
    from pamconform.cli import common
    from pamconform.cli.console import Console
    from pamconform.core.registry import Case
    from pamconform.core.runner import CaseResult, TargetResult
    from pamconform.core.verdicts import Severity, Verdict
    from pamconform.report.known_findings import KnownFinding

    def case(cid: str) -> Case:
        return Case(cid, "R-S1", Severity.MUST, cid, "r.", "redirector", "server", print, "s")

    result = TargetResult("t", "server", "redirector", [
        CaseResult(case("a"), Verdict.FAIL, "no", 0.1),
        CaseResult(case("b"), Verdict.PASS, "", 0.1)])
    run = report.Run(shard={"part": "1/2", "index": 1, "count": 2, "plan": {"t": ["a", "b"]}})
    args = argparse.Namespace(report=tmp_path / "r", known_findings=[
        KnownFinding("t", "a"), KnownFinding("t", "b")])
    assert common.finish([result], args, Console(quiet=True), run) == 0
    data = json.loads((tmp_path / "r" / "index.json").read_text())
    assert data["shard"]["known_failing"] == [["t", "a"]]


def _set(path: str, value: Any) -> Any:
    def edit(data: dict) -> None:
        *keys, last = path.split(".")
        into: Any = data
        for key in keys:
            into = into[int(key)] if isinstance(into, list) else into[key]
        into[last] = value
    return edit


@pytest.mark.parametrize(("edit", "needle"), [
    (_set("shard.plan", "x"), "shard.plan: expected a table"),
    (_set("shard.count", "x"), "shard.count: expected a whole number"),
    (_set("shard.index", None), "shard.index: expected a whole number"),
    (_set("targets", {}), "not a pamconform index.json"),
    (lambda d: d["targets"][0].pop("kind"), "targets: expected tables with a name, kind"),
    (_set("targets.0.cases.0.verdict", "GREAT"), "unknown verdict 'GREAT'"),
    (_set("targets.0.protocol", 3), "targets: expected tables with a name, kind"),
    (_set("targets.0.timing", {"wall_s": "1"}), "targets.t.timing: expected a table"),
    (_set("interrupted", "SIGFOO"), "interrupted: expected SIGINT or SIGTERM"),
    (_set("duration_s", "long"), "duration_s: expected a number"),
])
def test_a_damaged_shard_report_is_one_line_and_no_report(tmp_path, edit, needle,
                                                         in_process_cli) -> None:
    a = _shard_report(tmp_path / "a", 1, cases=["a"], edit=edit)
    b = _shard_report(tmp_path / "b", 2, cases=["b"])
    proc = in_process_cli("merge", str(a), str(b), "--report", str(tmp_path / "out"))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], lines
    assert not (tmp_path / "out").exists()


def test_merge_into_a_file_is_one_line(tmp_path) -> None:
    a = _shard_report(tmp_path / "a", 1, cases=["a"])
    b = _shard_report(tmp_path / "b", 2, cases=["b"])
    (tmp_path / "out").write_text("mine")
    proc = pamconform("merge", str(a), str(b), "--report", str(tmp_path / "out"))
    assert proc.returncode == 2 and "is not a directory" in proc.stderr, proc.stderr
    assert (tmp_path / "out").read_text() == "mine"


def test_token_server_shards_given_a_socket_directory_merge(tmp_path: Path) -> None:
    """The token target given as its socket's directory is named as typed in the plan and
    in the reports, so its shards merge (it was once named after its token command)."""
    import shlex

    from pamconform.core import resources

    sockets = tmp_path / "s"
    sockets.mkdir(mode=0o700)
    mint = shlex.join([sys.executable, str(resources.servers_dir() / "token_server.py"),
                       "--socket-dir", str(sockets), "--timeout", "10",
                       "--allow-uid", str(os.getuid())])
    common = ["server", str(sockets), "--protocol", "transient-token", "--token-command", mint,
              "--cases", "token.server.c*", "--cases", "token.server.s*", "--quiet"]
    parts = []
    for k in (1, 2):
        part = tmp_path / f"shard{k}"
        proc = pamconform(*common, "--shard", f"{k}/2", "--report", str(part))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        data = json.loads((part / "index.json").read_text())
        assert {t["name"] for t in data["targets"]} <= {str(sockets)}
        parts.append(part)
    merged = tmp_path / "merged"
    proc = pamconform("merge", *map(str, parts), "--report", str(merged))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads((merged / "index.json").read_text())
    assert [t["name"] for t in data["targets"]] == [str(sockets)]
    assert len(data["targets"][0]["cases"]) >= 2


def test_merge_into_one_of_its_shards_is_refused(tmp_path) -> None:
    a = _shard_report(tmp_path / "a", 1, cases=["a"])
    b = _shard_report(tmp_path / "b", 2, cases=["b"])
    before = (a / "index.json").read_bytes() if a.is_dir() else a.read_bytes()
    for given in (tmp_path / "a", tmp_path / "a" / "index.json"):
        proc = pamconform("merge", str(given), str(b), "--report", str(tmp_path / "a"))
        assert proc.returncode == 2 and "is one of the shard reports" in proc.stderr
    assert (tmp_path / "a" / "index.json").read_bytes() == before


def test_merge_points_latest_only_inside_reports(tmp_path) -> None:
    a = _shard_report(tmp_path / "a", 1, cases=["a"])
    b = _shard_report(tmp_path / "b", 2, cases=["b"])
    proc = pamconform("merge", str(a), str(b), "--report", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "latest").exists()
    proc = pamconform("merge", str(a), str(b), "--report", str(tmp_path / "reports" / "all"))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "reports" / "latest").resolve() == (tmp_path / "reports" / "all")

    proc = pamconform("merge", str(a), str(b), "--report",
                      str(tmp_path / "reports" / "latest"))
    assert proc.returncode == 2 and "is the link to the newest report" in proc.stderr
    assert (tmp_path / "reports" / "latest").resolve() == (tmp_path / "reports" / "all")
