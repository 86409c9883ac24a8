"""JUnit XML (surefire flavour): one testcase per case, named by case id."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

#: Verdicts written as ``<skipped>``: no conclusion about the target.
SKIPPED_VERDICTS = ("SKIPPED", "INTERRUPTED", "NOT-RUN")
#: Characters XML 1.0 cannot carry at all (not even as references), plus DEL.
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")


def _clean(text: str) -> str:
    r"""Text safe for XML: characters XML cannot carry become ``\xNN`` escapes.

    >>> _clean("a\x00b\x1b[0m")
    'a\\x00b\\x1b[0m'
    """
    return _INVALID_XML.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256
                            else f"\\u{ord(m.group()):04x}", text)


def _clean_tree(root: ET.Element) -> None:
    """Clean every attribute value and text of the tree (wire bytes, server output)."""
    for el in root.iter():
        for key, value in el.attrib.items():
            el.attrib[key] = _clean(value)
        if el.text:
            el.text = _clean(el.text)


def _evidence_summary(case: dict[str, Any]) -> str:
    ev = case.get("evidence", {})
    lines = list(ev.get("notes", []))
    for e in ev.get("wire", [])[:40]:
        data = f" {e['data']}" if "data" in e else ""
        lines.append(f"{e['t_ms']:9.1f} ms #{e['conn']} {e['event']}{data}")
    return "\n".join(lines)


def _wall(target: dict[str, Any]) -> float:
    """The target's wall time (its lab and build included), else its cases' sum."""
    timing = target.get("timing") or {}
    wall = timing.get("wall_s")
    return float(wall) if wall is not None else sum(c["duration_s"] for c in target["cases"])


def _suite_times(suite: ET.Element, target: dict[str, Any]) -> None:
    """Per suite wall time as ``<properties>`` (JUnit has no nested suites to carry it)."""
    suites = (target.get("timing") or {}).get("suites") or {}
    if not suites:
        return
    props = ET.SubElement(suite, "properties")
    for name, t in suites.items():
        ET.SubElement(props, "property", name=f"suite.{name}.wall_s", value=f"{t['wall_s']:.3f}")
        ET.SubElement(props, "property", name=f"suite.{name}.cases",
                      value=str(t.get("cases", 0)))


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
            skipped=str(sum(c["verdict"] in SKIPPED_VERDICTS for c in cases)),
            time=f"{_wall(target):.3f}",
            timestamp=data["started"],
        )
        _suite_times(suite, target)
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
            elif verdict in SKIPPED_VERDICTS:  # also a stopped run's INTERRUPTED, NOT-RUN
                ET.SubElement(tc, "skipped", message=c["message"] or verdict)
            else:
                out = ET.SubElement(tc, "system-out")
                out.text = f"verdict: {verdict}" + (f" ({c['message']})" if c["message"] else "")
    _clean_tree(suites)
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, "unicode") + "\n"
