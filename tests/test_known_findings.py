"""``--known-findings``: recorded upstream FAILs stay FAIL in the report, not in the exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pamconform.core.errors import UsageError
from pamconform.core.registry import Case
from pamconform.core.runner import CaseResult, TargetResult, exit_code
from pamconform.core.verdicts import Severity, Verdict
from pamconform.lab import gallery
from pamconform.lab.localserver import LocalServer
from pamconform.report import known_findings

ROOT = Path(__file__).resolve().parents[1]
LOGIN = ("alice", "alice-known-pw")


def _case(case_id: str) -> Case:
    return Case(case_id, "R-S1", Severity.MUST, "t", "r", "redirector", "server",
                lambda ctx: None, "s")


def _target(name: str, verdicts: dict[str, Verdict]) -> TargetResult:
    return TargetResult(name, "server", "redirector",
                        [CaseResult(_case(cid), v, "", 0.0) for cid, v in verdicts.items()])


def test_load_reads_lines_and_refuses_malformed_ones(tmp_path: Path) -> None:
    good = tmp_path / "known.txt"
    good.write_text("# upstream bugs\nlab:x  a.b-c   # why\n\n")
    assert known_findings.load(good) == [known_findings.KnownFinding("lab:x", "a.b-c", "why")]
    bad = tmp_path / "bad.txt"
    bad.write_text("lab:x a.b extra\n")
    with pytest.raises(UsageError, match=r"bad.txt:1: expected"):
        known_findings.load(bad)
    with pytest.raises(UsageError, match="not a regular file"):
        known_findings.load(tmp_path)


def test_a_known_fail_does_not_set_the_exit_code_but_a_new_one_does() -> None:
    targets = [_target("t", {"a.one": Verdict.FAIL, "a.two": Verdict.PASS})]
    known = [known_findings.KnownFinding("t", "a.one"), known_findings.KnownFinding("t", "a.two")]
    counted, outcome = known_findings.apply(known, targets)
    assert exit_code(targets) == 1 and exit_code(counted) == 0
    assert [k.case for k in outcome.still_failing] == ["a.one"]
    assert [k.case for k, _ in outcome.not_failing] == ["a.two"]  # said, so it is pruned
    assert any("no longer FAILs: t a.two" in "".join(line) for line in outcome.lines())
    other = [_target("u", {"a.one": Verdict.FAIL})]  # same case, another target: still counts
    assert exit_code(known_findings.apply(known, other)[0]) == 1


def test_a_known_finding_this_run_did_not_check_is_not_called_fixed() -> None:
    known = [known_findings.KnownFinding("lab:x", "a.one"),  # target not run
             known_findings.KnownFinding("t", "a.three"),  # case not selected
             known_findings.KnownFinding("t", "a.four"),  # SKIPPED (--no-lab): not checked
             known_findings.KnownFinding("t", "a.two")]  # ran, but did not get a verdict
    targets = [_target("t", {"a.one": Verdict.PASS, "a.two": Verdict.ERROR,
                             "a.four": Verdict.SKIPPED})]
    _, outcome = known_findings.apply(known, targets)
    assert outcome.still_failing == []
    assert [(k.case, v) for k, v in outcome.not_failing] == [("a.two", Verdict.ERROR)]
    assert ["".join(line) for line in outcome.lines()] == [
        "known finding did not FAIL this run: t a.two: ERROR"]


@pytest.fixture
def prefix_match() -> Iterator[LocalServer]:
    with LocalServer(gallery.commands()["prefix-match"], [LOGIN], name="prefix-match") as server:
        yield server


def _pamconform(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), PAMCONFORM_CREDENTIALS=":".join(LOGIN))
    return subprocess.run([sys.executable, "-m", "pamconform.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def test_cli_exit_follows_the_list(prefix_match: LocalServer, tmp_path: Path) -> None:
    sock = str(prefix_match.socket)
    first = _pamconform("server", sock, "--name", "pm", "--report", str(tmp_path / "r1"),
                        "--cases", "redir.server.deny-*-password")
    assert first.returncode == 1, first.stderr
    index = json.loads((tmp_path / "r1" / "index.json").read_text())
    failing = [c["id"] for c in index["targets"][0]["cases"] if c["verdict"] == "FAIL"]
    assert failing
    known = tmp_path / "known.txt"
    known.write_text("".join(f"pm {cid}  # recorded\n" for cid in failing))
    second = _pamconform("server", sock, "--name", "pm", "--report", str(tmp_path / "r2"),
                         "--cases", "redir.server.deny-*-password", "--known-findings", str(known))
    assert second.returncode == 0, second.stdout + second.stderr
    assert "known finding, not counted: pm" in second.stdout
    index = json.loads((tmp_path / "r2" / "index.json").read_text())
    assert [c["id"] for c in index["targets"][0]["cases"] if c["verdict"] == "FAIL"] == failing
    partial = tmp_path / "partial.txt"
    partial.write_text(f"pm {failing[0]}\n")
    if len(failing) > 1:
        third = _pamconform("server", sock, "--name", "pm", "--report", str(tmp_path / "r3"),
                            "--cases", "redir.server.deny-*-password",
                            "--known-findings", str(partial))
        assert third.returncode == 1


def test_a_bad_list_is_refused_before_the_run(prefix_match: LocalServer, tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("only-one-field\n")
    proc = _pamconform("server", str(prefix_match.socket), "--known-findings", str(bad))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "expected 'TARGET CASE-ID'" in proc.stderr
    assert "Traceback" not in proc.stderr
