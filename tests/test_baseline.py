"""Regression baselines: ``pamconform diff`` and ``apply_baseline`` (``--baseline``)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pamconform import report
from pamconform.cli.console import Console
from pamconform.cli.main import main
from pamconform.core.registry import Case
from pamconform.core.runner import TargetResult, run_case
from pamconform.core.verdicts import Severity
from pamconform.report import baseline


def _report(targets: dict[str, dict[str, tuple[str, float]]]) -> dict[str, Any]:
    return {
        "pamconform": "0.1.0", "started": "2026-01-01T00:00:00+00:00", "duration_s": 1.0,
        "strict": False,
        "targets": [
            {"name": name, "kind": "server", "protocol": "redirector",
             "cases": [{"id": cid, "rule": "R-S1", "severity": "MUST", "title": cid,
                        "requirement": "r", "suite": "s", "verdict": v, "message":
                        f"msg {cid}" if v == "FAIL" else "", "duration_s": d, "evidence": {}}
                       for cid, (v, d) in cases.items()]}
            for name, cases in targets.items()
        ],
    }


OLD = _report({
    "ref": {"a.fail-now": ("PASS", 0.1), "b.err-now": ("SKIPPED", 0.1),
            "c.fixed": ("FAIL", 0.1), "d.soft": ("PASS", 0.1), "e.gone": ("PASS", 0.1),
            "f.slow": ("PASS", 0.6), "g.fast": ("PASS", 3.0), "h.tiny": ("PASS", 0.01),
            "i.same": ("PASS", 1.0), "j.skip": ("FAIL", 0.1)},
    "other": {"a.fail-now": ("PASS", 0.1)},
})
NEW = _report({
    "ref": {"a.fail-now": ("FAIL", 0.1), "b.err-now": ("ERROR", 0.1),
            "c.fixed": ("PASS", 0.1), "d.soft": ("NON-STRICT", 0.1),
            "f.slow": ("PASS", 1.3), "g.fast": ("PASS", 1.0), "h.tiny": ("PASS", 0.4),
            "i.same": ("PASS", 1.9), "j.skip": ("SKIPPED", 0.1), "k.new": ("FAIL", 0.1)},
})


def _ids(changes: list[baseline.Change]) -> list[tuple[str, str]]:
    return [(c.target, c.case) for c in changes]


def test_compare_sorts_every_kind_of_change() -> None:
    diff = baseline.compare(OLD, NEW)
    assert _ids(diff.newly_failing) == [("ref", "a.fail-now"), ("ref", "b.err-now")]
    assert _ids(diff.newly_passing) == [("ref", "c.fixed")]
    assert _ids(diff.changed) == [("ref", "d.soft"), ("ref", "j.skip")]
    assert _ids(diff.added) == [("ref", "k.new")]
    assert _ids(diff.removed) == [("ref", "e.gone"), ("other", "a.fail-now")]
    # both durations over 0.5 s and a ratio over 2: f (2.2x), g (3x); not h (tiny), i (1.9x)
    assert _ids(diff.slower) == [("ref", "f.slow")]
    assert _ids(diff.faster) == [("ref", "g.fast")]
    assert diff.regression
    assert diff.compared == 9


def test_time_threshold_is_configurable() -> None:
    diff = baseline.compare(OLD, NEW, time_ratio=1.5, time_min_s=0.0)
    assert ("ref", "i.same") in _ids(diff.slower)
    assert ("ref", "h.tiny") in _ids(diff.slower)


def test_no_regression_when_only_improvements() -> None:
    old = _report({"t": {"a": ("FAIL", 0.1), "b": ("PASS", 0.1)}})
    new = _report({"t": {"a": ("PASS", 0.1), "b": ("PASS", 0.1), "c": ("FAIL", 0.1)}})
    diff = baseline.compare(old, new)
    assert not diff.regression  # an added failing case is a finding, not a regression
    assert "no regression" in baseline.format_diff(diff)[-1]


def test_single_targets_are_paired_whatever_their_names() -> None:
    old = _report({"/tmp/pc-1/socket": {"a": ("PASS", 0.1)}})
    new = _report({"/tmp/pc-2/socket": {"a": ("FAIL", 0.1)}})
    diff = baseline.compare(old, new)
    assert _ids(diff.newly_failing) == [("/tmp/pc-2/socket", "a")]
    assert diff.renamed == [("/tmp/pc-1/socket", "/tmp/pc-2/socket")]


def test_format_is_readable() -> None:
    lines = baseline.format_diff(baseline.compare(OLD, NEW))
    text = "\n".join(lines)
    assert "NEWLY FAILING (2):" in text
    assert "ref  a.fail-now  PASS -> FAIL  msg a.fail-now" in text
    assert "0.60 s -> 1.30 s (2.2x slower)" in text
    assert "3.00 s -> 1.00 s (3.0x faster)" in text
    assert "k.new" in text and "(new case, failing)" in text
    assert lines[-1] == "REGRESSION: some cases newly fail"


def _write(tmp_path: Path, name: str, data: object) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_diff_command_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old, new = _write(tmp_path, "old.json", OLD), _write(tmp_path, "new.json", NEW)
    assert main(["diff", str(old), str(new)]) == 1
    out = capsys.readouterr().out
    assert "NEWLY FAILING (2):" in out and f"old {old}" in out
    assert main(["diff", str(old), str(old)]) == 0
    assert "no changes (11 cases in both)" in capsys.readouterr().out
    # a report directory works as well as its index.json
    (tmp_path / "rep").mkdir()
    _write(tmp_path / "rep", "index.json", NEW)
    assert main(["diff", str(new), str(tmp_path / "rep")]) == 0
    capsys.readouterr()
    assert main(["diff", str(new), str(old), "--time-threshold", "10"]) == 1  # c.fixed broke
    out = capsys.readouterr().out
    assert "(beyond" not in out


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (None, "no such report"),
        ("{not json", "not JSON"),
        ("[1, 2]", "top level is not an object"),
        ('{"targets": [{"name": "x"}]}', "no 'cases' list"),
        ('{"targets": [{"name": "x", "cases": [{"id": "a", "verdict": "MEH"}]}]}',
         "unknown verdict"),
    ],
)
def test_diff_bad_input_is_one_line_exit_2(tmp_path: Path, content: str | None,
                                           needle: str) -> None:
    bad = tmp_path / "bad.json"
    if content is not None:
        bad.write_text(content)
    good = _write(tmp_path, "good.json", OLD)
    proc = subprocess.run([sys.executable, "-m", "pamconform.cli", "diff", str(bad), str(good)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2
    assert needle in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_bad_threshold_is_usage_error(tmp_path: Path) -> None:
    old = _write(tmp_path, "old.json", OLD)
    assert main(["diff", str(old), str(old), "--time-threshold", "0.5"]) == 2


def test_baseline_option_is_checked_before_the_run(tmp_path: Path) -> None:
    bad = tmp_path / "missing.json"
    for argv in (["server", "/tmp/x", "--credentials", "a:bbbb"], ["run", "--no-lab"],
                 ["module", "src"]):
        proc = subprocess.run(
            [sys.executable, "-m", "pamconform.cli", *argv, "--baseline", str(bad)],
            capture_output=True, text=True, timeout=60, check=False)
        assert proc.returncode == 2, proc.stderr
        assert "--baseline" in proc.stderr and "no such report" in proc.stderr


def test_apply_baseline(tmp_path: Path) -> None:
    out = io.StringIO()
    console = Console(out)
    old = _write(tmp_path, "old.json", OLD)
    assert baseline.apply_baseline(old, NEW, console.line) == 1
    assert "NEWLY FAILING" in out.getvalue()
    assert baseline.apply_baseline(old, OLD, console.line) == 0
    assert baseline.apply_baseline(tmp_path / "nope.json", NEW, console.line) == 2
    assert "no such report" in out.getvalue().splitlines()[-1]


def _real_report(tmp_path: Path, name: str, failing: bool) -> Path:
    def body(ctx: object) -> None:
        if failing:
            from pamconform.core.outcome import Fail

            raise Fail("b'0'", "b'1'")

    case = Case("x.case", "R-S1", Severity.MUST, "t", "r", "redirector", "server", body, "s")
    target = TargetResult("ref", "server", "redirector", [run_case(case, object())])
    return report.write(report.Run(targets=[target]), tmp_path / name) / "index.json"


def test_real_reports_round_trip(tmp_path: Path) -> None:
    old = _real_report(tmp_path, "old", failing=False)
    new = _real_report(tmp_path, "new", failing=True)
    assert main(["diff", str(old), str(new)]) == 1
    assert main(["diff", str(new), str(old)]) == 0


def test_many_added_or_removed_cases_are_summarised_per_target() -> None:
    old = _report({"t": {f"c{i:02d}": ("PASS", 0.1) for i in range(30)},
                   "u": {"x": ("FAIL", 0.1)}})
    new = _report({"t": {"c00": ("PASS", 0.1)}})
    lines = baseline.format_diff(baseline.compare(old, new))
    assert "cases removed (30):" in lines
    assert "  t: 29 cases (were 29 PASS)" in lines
    assert "  u: 1 cases (were 1 FAIL)" in lines


def test_a_known_finding_newly_failing_is_listed_not_counted() -> None:
    """--known-findings with --baseline: the upstream bug listed as known must not keep
    CI red (the console said "not counted"); any other new FAIL still is a regression."""
    old = _report({"t": {"a": ("PASS", 0.1), "b": ("PASS", 0.1)}})
    new = _report({"t": {"a": ("FAIL", 0.1), "b": ("PASS", 0.1)}})
    diff = baseline.compare(old, new, known=frozenset({("t", "a")}))
    assert not diff.regression and _ids(diff.known_failing) == [("t", "a")]
    lines = baseline.format_diff(diff)
    assert any(line.startswith("newly failing, known findings") for line in lines)
    assert lines[-1] == "no regression"
    other = _report({"t": {"a": ("FAIL", 0.1), "b": ("FAIL", 0.1)}})
    assert baseline.compare(old, other, known=frozenset({("t", "a")})).regression
    assert baseline.compare(old, other, known=frozenset({("u", "b")})).regression


@pytest.mark.parametrize(("edit", "code", "says"), [
    (lambda r: r.update(interrupted="SIGTERM"), 143, "the new run was stopped (SIGTERM)"),
    (lambda r: [c.update(verdict="NOT-RUN") for t in r["targets"] for c in t["cases"]], 2,
     "no finished verdict"),
    (lambda r: r.update(targets=[]), 2, "share no case"),
])
def test_a_new_report_that_proves_nothing_is_no_conclusion(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: Any, code: int,
        says: str) -> None:
    old = _report({"t": {"a": ("PASS", 0.1), "b": ("PASS", 0.1)}})
    new = _report({"t": {"a": ("PASS", 0.1), "b": ("PASS", 0.1)}})
    edit(new)
    rc = main(["diff", str(_write(tmp_path, "old.json", old)),
               str(_write(tmp_path, "new.json", new))])
    out = capsys.readouterr().out
    assert rc == code and "NO CONCLUSION: " in out and says in out, out
    assert "no regression" not in out


def test_a_failing_case_new_to_the_report_is_named_in_the_last_line() -> None:
    old = _report({"t": {"a": ("PASS", 0.1)}})
    new = _report({"t": {"a": ("PASS", 0.1), "c": ("FAIL", 0.1)}})
    last = baseline.format_diff(baseline.compare(old, new))[-1]
    assert last.startswith("no regression among the 1 cases in both; 1 case(s) new")


@pytest.mark.parametrize(("edit", "says"), [
    (lambda r: r["targets"][0]["cases"][0].update(verdict=["PASS"]), "unknown verdict"),
    (lambda r: r["targets"][0]["cases"][0].update(message=["x"]), "message is not a string"),
    (lambda r: r["targets"].append(dict(r["targets"][0])), "twice"),
    (lambda r: r["targets"][0]["cases"].append(dict(r["targets"][0]["cases"][0])), "twice"),
])
def test_a_malformed_report_is_one_line_exit_2(tmp_path: Path, edit: Any, says: str) -> None:
    good = _report({"t": {"a": ("PASS", 0.1)}})
    bad = _report({"t": {"a": ("PASS", 0.1)}})
    edit(bad)
    proc = subprocess.run([sys.executable, "-m", "pamconform.cli", "diff",
                           str(_write(tmp_path, "good.json", good)),
                           str(_write(tmp_path, "bad.json", bad))],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2 and says in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
