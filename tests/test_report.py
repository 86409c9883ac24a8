"""Report contract: index.json shape, JUnit with one testcase per case, readable HTML."""

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from pamconform import report
from pamconform.core.context import CaseContext
from pamconform.core.outcome import Fail
from pamconform.core.registry import Case
from pamconform.core.runner import TargetResult, grade, run_case
from pamconform.core.verdicts import Severity, Verdict


def _case(cid: str, body, severity: Severity = Severity.MUST) -> Case:
    return Case(cid, "R-S1", severity, f"title {cid}", "The server does <x>.", "redirector",
                "server", body, "redirector_server.r_s1_replies")


def _fail(ctx: CaseContext) -> None:
    ctx.log.add(ctx.log.new_conn(), "send", b"alice\n<pw>\n")
    raise Fail("b'0'", "b'1'")


def _boom(ctx: CaseContext) -> None:
    raise RuntimeError("harness broke")


def _soft(ctx: CaseContext) -> None:
    ctx.non_strict("replied 0\\n")


def _run(tmp_path: Path) -> Path:
    target = TargetResult("sock", "server", "redirector")
    for cid, body in (("a.pass", lambda ctx: None), ("a.fail", _fail), ("a.error", _boom),
                      ("a.soft", _soft)):
        target.results.append(run_case(_case(cid, body), object()))
    run = report.Run(targets=[target])
    return report.write(run, tmp_path / "r")


def test_index_json_contract(tmp_path: Path) -> None:
    data = json.loads((_run(tmp_path) / "index.json").read_text())
    assert set(data) >= {"pamconform", "started", "duration_s", "targets"}
    t = data["targets"][0]
    assert (t["name"], t["kind"], t["protocol"]) == ("sock", "server", "redirector")
    verdicts = {c["id"]: c["verdict"] for c in t["cases"]}
    assert verdicts == {"a.pass": "PASS", "a.fail": "FAIL", "a.error": "ERROR",
                        "a.soft": "NON-STRICT"}
    fail = next(c for c in t["cases"] if c["id"] == "a.fail")
    assert set(fail) >= {"id", "rule", "severity", "title", "verdict", "duration_s", "evidence"}
    assert fail["evidence"]["wire"][0]["data"] == "alice\\n<pw>\\n"
    error = next(c for c in t["cases"] if c["id"] == "a.error")
    assert "RuntimeError" in error["evidence"]["traceback"]


def test_junit_has_one_testcase_per_case(tmp_path: Path) -> None:
    root = ET.parse(_run(tmp_path) / "junit.xml").getroot()
    cases = root.findall(".//testcase")
    assert [c.get("name") for c in cases] == ["a.pass", "a.fail", "a.error", "a.soft"]
    assert all(c.get("classname") for c in cases)
    assert cases[1].find("failure") is not None and cases[2].find("error") is not None
    suite = root.find("testsuite")
    assert suite is not None and suite.get("failures") == "1" and suite.get("errors") == "1"


def test_html_escapes_and_shows_evidence(tmp_path: Path) -> None:
    page = (_run(tmp_path) / "index.html").read_text()
    assert "The server does &lt;x&gt;." in page
    assert "alice\\n&lt;pw&gt;\\n" in page
    assert page.count('class="case"') == 4


def test_latest_symlink(tmp_path: Path) -> None:
    directory = _run(tmp_path)
    report.point_latest(directory)
    assert (tmp_path / "latest").resolve() == directory.resolve()


def test_should_failure_is_non_strict_unless_strict() -> None:
    case = _case("b.should", _fail, Severity.SHOULD)
    assert grade(case, CaseContext(None), Fail("x", "y"))[0] is Verdict.NON_STRICT
    assert grade(case, CaseContext(None, strict=True), Fail("x", "y"))[0] is Verdict.FAIL
    soft = CaseContext(None, strict=True)
    soft.non_strict("meh")
    assert grade(case, soft, None)[0] is Verdict.FAIL
