"""index.html renders in a real browser (headless Chromium) and its filter script works.

Skipped when no Chromium is installed. Two reports: a real one (``pamconform run
--no-lab --gallery`` on two cases: the reference server and the faulty gallery side
by side) and a synthetic one carrying every kind of evidence the suites record
(wire log, login transcripts, PAM return codes, valgrind, a traceback).
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pamconform import report
from pamconform.core.registry import Case
from pamconform.core.runner import CaseResult, TargetResult
from pamconform.core.verdicts import Severity, Verdict

CHROMIUM = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"),
                             shutil.which("google-chrome")) if p), None)

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium in PATH (apt-get "
                                "install chromium) to render the report headless")

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"]


def _chromium(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    profile = tempfile.mkdtemp(prefix="pc-chromium-")
    try:
        return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args, url],
                              capture_output=True, text=True, timeout=120, check=False)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def screenshot(page: Path, png: Path, query: str = "") -> None:
    proc = _chromium(page.resolve().as_uri() + query, f"--screenshot={png}",
                     "--window-size=1400,2000")
    assert png.is_file(), proc.stderr[-2000:]


def dump_dom(page: Path, query: str = "") -> str:
    proc = _chromium(page.resolve().as_uri() + query, "--dump-dom")
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def png_size(png: Path) -> tuple[int, int]:
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _check_png(png: Path) -> None:
    width, height = png_size(png)
    assert (width, height) == (1400, 2000)
    # a blank page compresses to a few KiB; a rendered report is far larger
    assert png.stat().st_size > 30_000, png.stat().st_size


def _shown(dom: str) -> tuple[int, int]:
    m = re.search(r'id="shown">(\d+) of (\d+) cases shown<', dom)
    assert m, "the filter script did not run (the count line is still the static text)"
    return int(m[1]), int(m[2])


def _visible_cases(dom: str) -> list[str]:
    return re.findall(r'<details class="case" id="[^"]*" data-id="([^"]*)" '
                      r'data-verdict="[^"]*"[^>]*>', dom)


def _hidden_cases(dom: str) -> list[str]:
    return re.findall(r'<details class="case hidden" id="[^"]*" data-id="([^"]*)"', dom)


# --------------------------------------------------------------------------- real report


@pytest.fixture(scope="module")
def real_report() -> Iterator[Path]:
    out = Path(tempfile.mkdtemp(prefix="pc-browser-"))
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "pamconform.cli", "run", "--no-lab", "--gallery",
             "--cases", "redir.server.polarity", "--cases", "redir.server.deny-wrong-password",
             "--report", str(out / "r")],
            capture_output=True, text=True, timeout=600, check=False)
        assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]  # gallery FAILs
        yield out / "r" / "index.html"
    finally:
        shutil.rmtree(out, ignore_errors=True)


def test_real_report_renders(real_report: Path, tmp_path: Path) -> None:
    png = tmp_path / "report.png"
    screenshot(real_report, png)
    _check_png(png)


def test_real_report_filter_script_runs(real_report: Path) -> None:
    dom = dump_dom(real_report)
    shown, total = _shown(dom)
    assert shown == total and total >= 2 * 2  # two cases, many targets
    assert "Targets side by side" in dom and 'class="matrix"' in dom
    assert not _hidden_cases(dom)
    # only FAILs of the reference server: none; of the inverted-polarity server: both cases
    dom = dump_dom(real_report, "?verdict=FAIL&target=reference-server")
    assert _shown(dom)[0] == 0
    dom = dump_dom(real_report, "?verdict=FAIL&target=faulty:inverted-polarity")
    assert sorted(_visible_cases(dom)) == ["redir.server.deny-wrong-password",
                                           "redir.server.polarity"]


# --------------------------------------------------------------------------- synthetic


def _case(cid: str, rule: str, suite: str, severity: Severity = Severity.MUST) -> Case:
    return Case(cid, rule, severity, f"Title of {cid}", f"The target does what {cid} needs.",
                "redirector", "module" if "module" in suite else "server", lambda ctx: None,
                suite)


def synthetic() -> report.Run:
    wire = [{"t_ms": 0.5, "conn": 1, "event": "connect", "data": "/run/x/socket", "size": 0},
            {"t_ms": 0.6, "conn": 1, "event": "send", "data": "alice\\n<pw>\\n", "size": 12},
            {"t_ms": 91.2, "conn": 1, "event": "recv", "data": "0", "size": 1},
            {"t_ms": 91.3, "conn": 1, "event": "eof"}]
    login = {"label": "wrong password over ssh", "via": "ssh", "server": "reference",
             "outcome": "GRANTED", "latency_s": 0.41, "detail": "PCID=alice",
             "command": "docker exec -it box ssh alice@localhost", "prompts": 1,
             "transcript": "alice@localhost's password: \r\nPCID=alice\r\n"}
    attempt = {"label": "garbage reply", "summary": "ran: pam_authenticate -> PAM_SUCCESS",
               "steps": [{"step": "start", "code": 0, "name": "PAM_SUCCESS"},
                         {"step": "authenticate", "code": 0, "name": "PAM_SUCCESS"}],
               "valgrind": {"errors": 1, "invalid": ["InvalidRead: Invalid read of size 1"],
                            "uninitialised": [], "leaks": "definitely lost: 0 bytes in 0 "
                            "blocks", "excerpt": "InvalidRead: Invalid read of size 1 at "
                            "parse (pam_x.c:42)\n    by pam_sm_authenticate (pam_x.c:90)"}}
    server = TargetResult("reference-server", "server", "redirector", [
        CaseResult(_case("redir.server.polarity", "R-S1", "redirector_server.r_s1"),
                   Verdict.PASS, "", 0.19, {"wire": wire}),
        CaseResult(_case("redir.server.trailing-newline", "R-S1", "redirector_server.r_s1",
                         Severity.SHOULD), Verdict.NON_STRICT, "replied 0\\n", 0.05,
                   {"wire": wire, "notes": ["a trailing newline is tolerated"]}),
        CaseResult(_case("redir.server.timing", "R-S7", "redirector_server.r_s7"),
                   Verdict.INFORMATIONAL, "unknown users answer 2 ms sooner", 1.2,
                   {"timing_ms": {"known": [90.1, 91.0], "unknown": [88.0, 89.2]}}),
    ])
    module = TargetResult("reference-module", "module", "redirector", [
        CaseResult(_case("redir.e2e.ssh-wrong-password", "R-M1", "redirector_module_e2e.m1"),
                   Verdict.FAIL, "expected DENIED; got GRANTED after 0.41 s", 0.9,
                   {"logins": [login]}),
        CaseResult(_case("redir.module.garbage-reply", "R-M3", "redirector_module_direct.m3"),
                   Verdict.FAIL, "expected no memory errors; got 1 valgrind error", 2.5,
                   {"attempts": [attempt]}),
        CaseResult(_case("redir.module.no-socket", "R-M1", "redirector_module_direct.m1"),
                   Verdict.SKIPPED, "needs the direct driver", 0.0, {}),
        CaseResult(_case("redir.module.broken", "R-M2", "redirector_module_direct.m2"),
                   Verdict.ERROR, "harness error: RuntimeError: boom", 0.1,
                   {"traceback": "Traceback (most recent call last):\nRuntimeError: boom\n"}),
        CaseResult(_case("redir.server.polarity", "R-S1", "redirector_server.r_s1"),
                   Verdict.PASS, "", 0.2, {"wire": wire}),
    ], info={"source": "modules/pam_redirector", "so": "pam_redirector.so",
             "pam_stacks": {"/etc/pam.d/sshd": "auth required pam_redirector.so x\n"}})
    return report.Run(targets=[server, module])


@pytest.fixture
def synthetic_page(tmp_path: Path) -> Path:
    return report.write(synthetic(), tmp_path / "synthetic") / "index.html"


def test_synthetic_report_renders_every_kind_of_evidence(synthetic_page: Path,
                                                         tmp_path: Path) -> None:
    png = tmp_path / "synthetic.png"
    screenshot(synthetic_page, png, "?verdict=FAIL,ERROR,NON-STRICT&open=1")
    _check_png(png)
    dom = dump_dom(synthetic_page, "?verdict=FAIL,ERROR&open=1")
    assert _shown(dom) == (3, 8)
    assert sorted(_visible_cases(dom)) == ["redir.e2e.ssh-wrong-password",
                                           "redir.module.broken",
                                           "redir.module.garbage-reply"]
    # the shown cases are open, and their evidence is there
    assert dom.count('<details class="case" ') == 3
    assert len(re.findall(r'<details class="case" [^>]*open=""', dom)) == 3
    for needle in ("PCID=alice", "docker exec -it box ssh", "PAM return codes",
                   "PAM_SUCCESS", "Invalid read of size 1", "RuntimeError: boom",
                   "alice\\n&lt;pw&gt;\\n", "The target does what redir.module.broken needs."):
        assert needle in dom, needle
    # the server section has nothing left to show, so it is hidden as a whole
    assert re.search(r'<section class="target hidden" id="target-0"', dom)


def test_synthetic_filters_by_rule_suite_and_text(synthetic_page: Path) -> None:
    assert _shown(dump_dom(synthetic_page, "?rule=R-S1")) == (3, 8)
    assert _shown(dump_dom(synthetic_page, "?suite=redirector_module_direct.m1")) == (1, 8)
    assert _shown(dump_dom(synthetic_page, "?q=valgrind")) == (1, 8)


def test_page_is_self_contained(synthetic_page: Path) -> None:
    page = synthetic_page.read_text()
    assert not re.search(r'(?:src|href)="(?:https?:)?//', page)
    assert "@import" not in page and "url(" not in page


def _fail_rows(dom: str) -> dict[str, Any]:
    return {m[1]: m[2] for m in re.finditer(r'data-id="([^"]+)"[^>]*data-verdicts="([^"]*)"',
                                            dom)}


def test_side_by_side_grid(synthetic_page: Path) -> None:
    dom = dump_dom(synthetic_page)
    rows = _fail_rows(dom)
    assert rows["redir.server.polarity"] == "PASS"  # in both targets
    assert "redir.module.garbage-reply" in rows
    # the grid cells link to each target's own copy of a case
    assert 'href="#t0-redir.server.polarity"' in dom and 'href="#t1-redir.server.polarity"' in dom
