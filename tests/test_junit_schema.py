"""junit.xml is valid JUnit/Surefire XML (what CI servers read).

Validated against ``tests/fixtures/junit-surefire.xsd`` (the format's essentials, written
for these tests) with ``xmlschema`` when it is installed, and always by structural
checks that need only the standard library.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pamconform import report
from pamconform.core.context import CaseContext
from pamconform.core.outcome import Fail, Skip
from pamconform.core.registry import Case
from pamconform.core.runner import TargetResult, run_case
from pamconform.core.verdicts import Severity

XSD = Path(__file__).parent / "fixtures" / "junit-surefire.xsd"


def _case(cid: str, body, severity: Severity = Severity.MUST, suite: str = "s.r_s1") -> Case:
    return Case(cid, "R-S1", severity, f"title {cid}", f"The server does <{cid}> & more.",
                "redirector", "server", body, suite)


def _fail(ctx: CaseContext) -> None:
    ctx.log.add(ctx.log.new_conn(), "send", b"alice\n\x00\x1b[31m<pw>\n")
    ctx.note("server said \x01\x02 then \x7f closed")
    raise Fail("b'0'", "b'1' \x1b[0m and a \x0b vertical tab")


def _skip(ctx: CaseContext) -> None:
    raise Skip("needs root")


def _boom(ctx: CaseContext) -> None:
    raise RuntimeError("harness \x00 broke")


def _soft(ctx: CaseContext) -> None:
    ctx.non_strict("replied 0\\n")


def _info(ctx: CaseContext) -> None:
    ctx.informational("timing 2 ms")


def _write(tmp_path: Path) -> Path:
    server = TargetResult("/tmp/pc-x/socket", "server", "redirector")
    for cid, body, sev in (("a.pass", lambda ctx: None, Severity.MUST),
                           ("a.fail", _fail, Severity.MUST), ("a.error", _boom, Severity.MUST),
                           ("a.soft", _soft, Severity.SHOULD), ("a.info", _info, Severity.MAY),
                           ("a.skip", _skip, Severity.MUST)):
        server.results.append(run_case(_case(cid, body, sev), object()))
    empty = TargetResult("nothing-selected", "module", "redirector")
    run = report.Run(targets=[server, empty])
    return report.write(run, tmp_path / "r") / "junit.xml"


def test_junit_is_well_formed_xml(tmp_path: Path) -> None:
    data = _write(tmp_path).read_bytes()
    ET.fromstring(data)  # raises on control characters XML 1.0 cannot carry
    text = data.decode("utf-8")
    assert not re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", text)


def test_junit_valid_against_xsd(tmp_path: Path) -> None:
    xmlschema = pytest.importorskip("xmlschema", reason="xmlschema is not installed "
                                    "(pip install xmlschema); structural checks still run")
    schema = xmlschema.XMLSchema(str(XSD))
    schema.validate(str(_write(tmp_path)))


def test_xsd_rejects_what_ci_servers_choke_on(tmp_path: Path) -> None:
    """The schema is not vacuous: a testcase without classname, or a failure without a
    message, is invalid."""
    xmlschema = pytest.importorskip("xmlschema")
    schema = xmlschema.XMLSchema(str(XSD))
    base = ('<testsuites><testsuite name="s" tests="1" failures="1" errors="0" skipped="0">'
            "{}</testsuite></testsuites>")
    good = '<testcase name="a" classname="c" time="0.1"><failure message="m" type="t"/></testcase>'
    assert schema.is_valid(base.format(good))
    for bad in ('<testcase name="a" time="0.1"/>',
                '<testcase name="a" classname="c"><failure type="t"/></testcase>',
                '<testcase name="a" classname="c" time="1,5"/>',
                '<testcase name="a" classname="c"><skipped/><failure message="m" type="t"/>'
                "</testcase>"):
        assert not schema.is_valid(base.format(bad)), bad


def test_junit_structure(tmp_path: Path) -> None:
    root = ET.parse(_write(tmp_path)).getroot()
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert len(suites) == 2
    for suite in suites:
        assert suite.get("name")
        cases = suite.findall("testcase")
        for attr in ("tests", "failures", "errors", "skipped"):
            assert (suite.get(attr) or "").isdigit(), attr
        assert int(suite.get("tests", "-1")) == len(cases)
        assert int(suite.get("failures", "-1")) == sum(
            c.find("failure") is not None for c in cases)
        assert int(suite.get("errors", "-1")) == sum(c.find("error") is not None for c in cases)
        assert int(suite.get("skipped", "-1")) == sum(
            c.find("skipped") is not None for c in cases)
        assert re.fullmatch(r"\d+(\.\d+)?", suite.get("time", ""))
        for case in cases:
            assert case.get("name") and case.get("classname")
            assert re.fullmatch(r"\d+(\.\d+)?", case.get("time", ""))
            outcomes = [e.tag for e in case if e.tag in ("failure", "error", "skipped")]
            assert len(outcomes) <= 1
            for el in case:
                assert el.tag in ("failure", "error", "skipped", "system-out", "system-err")
                if el.tag in ("failure", "error"):
                    assert el.get("message") is not None and el.get("type")
    by_name = {c.get("name"): c for c in suites[0].findall("testcase")}
    fail = by_name["a.fail"].find("failure")
    assert fail is not None and fail.get("type") == "R-S1"
    # the failure carries the requirement and the evidence summary
    assert "The server does <a.fail> & more." in (fail.text or "")
    assert "send" in (fail.text or "") and "server said" in (fail.text or "")
    error = by_name["a.error"].find("error")
    assert error is not None and "RuntimeError" in (error.text or "")
    assert by_name["a.skip"].find("skipped") is not None
    out = by_name["a.soft"].find("system-out")
    assert out is not None and "NON-STRICT" in (out.text or "")
    assert suites[1].get("tests") == "0"
