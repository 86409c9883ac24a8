"""JUnit XML (surefire flavour): one testcase per case, named by case id."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any


def _evidence_summary(case: dict[str, Any]) -> str:
    ev = case.get("evidence", {})
    lines = list(ev.get("notes", []))
    for e in ev.get("wire", [])[:40]:
        data = f" {e['data']}" if "data" in e else ""
        lines.append(f"{e['t_ms']:9.1f} ms #{e['conn']} {e['event']}{data}")
    return "\n".join(lines)


def render_junit(data: dict[str, Any]) -> str:
    """The report as JUnit XML text."""
    suites = ET.Element("testsuites", name="pamconform")
    for target in data["targets"]:
        cases = target["cases"]
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=f"{target['kind']}:{target['protocol']}:{target['name']}",
            tests=str(len(cases)),
            failures=str(sum(c["verdict"] == "FAIL" for c in cases)),
            errors=str(sum(c["verdict"] == "ERROR" for c in cases)),
            skipped=str(sum(c["verdict"] == "SKIPPED" for c in cases)),
            time=f"{sum(c['duration_s'] for c in cases):.3f}",
            timestamp=data["started"],
        )
        for c in cases:
            tc = ET.SubElement(
                suite,
                "testcase",
                name=c["id"],
                classname=f"pamconform.{target['kind']}.{target['protocol']}.{c['suite']}",
                time=f"{c['duration_s']:.3f}",
            )
            verdict = c["verdict"]
            body = f"{c['rule']} {c['severity']}: {c['requirement']}\n{_evidence_summary(c)}"
            if verdict == "FAIL":
                el = ET.SubElement(tc, "failure", message=c["message"], type=c["rule"])
                el.text = body
            elif verdict == "ERROR":
                el = ET.SubElement(tc, "error", message=c["message"], type="harness")
                el.text = body + "\n" + c["evidence"].get("traceback", "")
            elif verdict == "SKIPPED":
                ET.SubElement(tc, "skipped", message=c["message"])
            else:
                out = ET.SubElement(tc, "system-out")
                out.text = f"verdict: {verdict}" + (f" ({c['message']})" if c["message"] else "")
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, "unicode") + "\n"
