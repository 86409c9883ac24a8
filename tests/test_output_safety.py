"""What reports and the console show of hostile or secret bytes, and that reports are whole."""

from __future__ import annotations

import io
import json
import os
import resource
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pamconform import report
from pamconform.cli.console import Console
from pamconform.core import redaction
from pamconform.core.registry import Case
from pamconform.core.runner import CaseResult, TargetResult
from pamconform.core.verdicts import Severity, Verdict
from pamconform.report.baseline import apply_baseline, load_report
from pamconform.report.merge import merge

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def fresh_redactor() -> Iterator[None]:
    saved = redaction._CURRENT
    redaction._CURRENT = redaction.Redactor()
    yield
    redaction._CURRENT = saved


def _result(case_id: str, verdict: Verdict, message: str = "") -> CaseResult:
    case = Case(case_id, "R-S1", Severity.MUST, "t", "r", "nslcd", "server", lambda ctx: None,
                "nslcd_server.x")
    return CaseResult(case, verdict, message, 0.1)


def test_the_baseline_diff_never_shows_a_piece_of_a_password(tmp_path: Path) -> None:
    redaction.register_login(b"bob", b"Tq\t9zK\tv4Lm")
    redaction.register_login(b"alice", b"alice-auth-pw")
    old = {"targets": [{"name": "srv", "cases": [{"id": "a", "verdict": "PASS"},
                                                 {"id": "b", "verdict": "PASS"}]}]}
    (tmp_path / "index.json").write_text(json.dumps(old))
    cut_inside = "expected a denial; got".ljust(101, ".") + "alice-auth-pw' and then EOF"
    run = report.Run(targets=[TargetResult("srv", "server", "redirector", [
        _result("a", Verdict.FAIL, cut_inside),
        _result("b", Verdict.FAIL, "got the server's banner 'welcome bob: Tq\t9zK\tv4Lm'")])])
    out = io.StringIO()
    assert apply_baseline(tmp_path / "index.json", report.redacted(run), Console(out).line) == 1
    shown = out.getvalue()
    assert "regress" in shown.lower() or "FAIL" in shown
    for piece in ("alice-", "-auth", "9zK", "v4Lm", "Tq 9"):
        assert piece not in shown


def test_case_ids_a_password_piece_matches_stay_whole_in_reports_and_console(
        tmp_path: Path) -> None:
    redaction.register_login(b"lucy", b"lucy-ldap-pw")  # "ldap-p" is in ldap-paused
    ids = ["nslcd.server.ldap-paused", "nslcd.server.authz-expired"]
    parts = []
    for k, case_id in enumerate(ids, 1):
        run = report.Run(targets=[TargetResult("lab:pynslcd", "server", "nslcd", [
            _result(case_id, Verdict.FAIL if k == 1 else Verdict.PASS, "expected x; got y")])],
            shard={"part": f"{k}/2", "index": k, "count": 2, "plan_sha256": "p",
                   "plan": {"lab:pynslcd": ids}, "split_sha256": "s",
                   "known_failing": [["lab:pynslcd", ids[0]]] if k == 1 else []})
        report.write(run, tmp_path / str(k))
        parts.append((str(k), load_report(tmp_path / str(k))))
    assert parts[0][1]["shard"]["plan"] == {"lab:pynslcd": ids}
    assert parts[0][1]["shard"]["known_failing"] == [["lab:pynslcd", ids[0]]]
    merged = merge(parts)  # refused before: a planned case was in no report
    assert [c["id"] for c in merged["targets"][0]["cases"]] == ids
    out = io.StringIO()
    Console(out).summary(TargetResult("lab:pynslcd", "server", "nslcd",
                                      [_result(ids[0], Verdict.FAIL, "lucy-ldap-pw")]))
    assert f"FAIL   {ids[0]} [R-S1]" in out.getvalue()
    assert "lucy-ldap-pw" not in out.getvalue()


def test_terminal_control_bytes_from_a_target_are_shown_escaped() -> None:
    hostile = "stderr: \x1b]0;owned\x07\x1b[1A\x1b[2K[2/9] PASS\x08 \x9b31m"
    out = io.StringIO()
    console = Console(out)
    console.progress(1, 9, _result("t.case", Verdict.ERROR, hostile))
    console.summary(TargetResult("t", "server", "redirector",
                                 [_result("t.case", Verdict.FAIL, hostile)]))
    console.line("\nreport: ", hostile)
    shown = out.getvalue()
    assert "\nreport: stderr" in shown  # our own line breaks stay
    assert not any(ch in shown for ch in "\x1b\x07\x08\x9b")
    assert "\\x1b[1A" in shown and "\\x9b31m" in shown


def test_a_name_that_is_not_utf8_still_gives_the_whole_report(tmp_path: Path) -> None:
    name = os.fsdecode(b"/tmp/srv-\xff.sock")
    run = report.Run(targets=[TargetResult(name, "server", "redirector",
                                           [_result("a", Verdict.PASS)])])
    report.write(run, tmp_path / "r")
    assert sorted(os.listdir(tmp_path / "r")) == ["index.html", "index.json", "junit.xml"]
    assert "srv-\\udcff.sock" in (tmp_path / "r" / "index.html").read_text()


def _write_big_report_with_a_full_disk(directory: str) -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
    run = report.Run(targets=[TargetResult("t", "server", "redirector", [
        _result(f"c{i}", Verdict.PASS, "x" * 300) for i in range(2000)])])
    report.write(run, Path(directory))


def test_a_report_rewritten_onto_a_full_disk_keeps_the_old_one_whole(tmp_path: Path) -> None:
    directory = tmp_path / "r"
    report.write(report.Run(targets=[TargetResult("t", "server", "redirector",
                                                  [_result("a", Verdict.PASS)])]), directory)
    before = {f: (directory / f).read_bytes() for f in os.listdir(directory)}
    code = ("import sys; sys.path.insert(0, sys.argv[2]); sys.path.insert(0, sys.argv[3]);"
            "from test_output_safety import _write_big_report_with_a_full_disk as w;"
            "w(sys.argv[1])")
    done = subprocess.run([sys.executable, "-c", code, str(directory), str(ROOT / "tests"),
                           str(ROOT)], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode != 0 and "File too large" in done.stderr
    assert {f: (directory / f).read_bytes() for f in os.listdir(directory)} == before
    assert len(load_report(directory)["targets"][0]["cases"]) == 1


def test_a_connection_dribbling_bytes_is_summed_up_and_a_secret_at_the_cut_stays_hidden(
        ) -> None:
    from pamconform.core.wirelog import MAX_EVENTS_PER_CONN, WireLog

    redaction.register_login(b"alice", b"alice-auth-pw")
    log = WireLog()
    conn = log.new_conn()
    # the password starts three bytes before the last listed receive
    stream = b"x" * (MAX_EVENTS_PER_CONN - 3) + b"alice-auth-pw" + b"y" * 5000
    for byte in stream:
        log.add(conn, "recv", bytes([byte]))
    events = log.as_list()
    assert len(events) == MAX_EVENTS_PER_CONN + 1
    assert events[-1]["data"].startswith(f"\u2026 {len(stream) - MAX_EVENTS_PER_CONN} more")
    assert events[-1]["size"] == len(stream) - MAX_EVENTS_PER_CONN
    assert [e["data"] for e in events[-4:-1]] == [
        f"\u2039password of alice, 13 bytes\u203a[{i}:{i + 1}]".replace("[0:", "[:")
        for i in range(3)]  # the bytes at the cut are marked, not shown


def test_a_long_reply_in_a_message_is_cut_after_redaction() -> None:
    from pamconform.protocols.redirector.client import Reply

    redaction.register_login(b"alice", b"alice-auth-pw")
    reply = Reply(b"z" * 590 + b"alice-auth-pw" + b"q" * 100_000, eof=True)
    text = reply.describe()
    assert len(text) < 800 and "100603 bytes" in text
    assert "alice-a" not in text


def test_a_stopped_target_s_wall_time_is_the_span_of_the_cases_that_ran() -> None:
    from pamconform.report.timing import target_timing

    ran = [_result(f"c{i}", Verdict.PASS) for i in range(3)]
    for i, r in enumerate(ran):
        r.started, r.duration_s = 100.0 + i, 5.0  # side by side: 100..107
    not_run = _result("later", Verdict.NOT_RUN)  # no start time (0.1 s: the helper's)
    timing = target_timing(TargetResult("t", "server", "redirector", [*ran, not_run]))
    assert timing["wall_s"] == 7.0  # not the 15.1 s the durations add up to
