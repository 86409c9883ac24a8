"""The release matrix: the lab on Debian bookworm and trixie, ``--distro``, one report.

The helpers are checked without an engine. The docker tests build (once) and reuse the
trixie lab image (a cold machine pays ~30 s of debootstrap and ~40 s of image build), then
run two cases on both releases through the CLI into one report.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pamconform.core import resources
from pamconform.core.errors import UsageError
from pamconform.core.registry import Case
from pamconform.core.runner import CaseResult, TargetResult
from pamconform.core.verdicts import Severity, Verdict
from pamconform.lab.distros import parse_distros
from pamconform.lab.images import LabBuildError, _tag_for, base_tag, tag_distro
from pamconform.lab.module_run import distro_differences, distro_target_name, format_differences

ROOT = Path(__file__).resolve().parents[1]
CASES = ["redir.e2e.ssh-grant", "redir.module.grant"]


# -- helpers, no engine -----------------------------------------------------------------------
def test_parse_distros() -> None:
    assert parse_distros(None) == ["bookworm"]
    assert parse_distros("bookworm") == ["bookworm"]
    assert parse_distros(" trixie,bookworm,trixie ") == ["trixie", "bookworm"]
    for bad in ("sid", "bookworm,buster", ",", ""):
        if bad == "":
            assert parse_distros(bad) == ["bookworm"]
            continue
        with pytest.raises(UsageError):
            parse_distros(bad)


def test_target_names_and_tags() -> None:
    assert distro_target_name("m", "bookworm", ["bookworm"]) == "m"
    assert distro_target_name("m", "trixie", ["trixie"]) == "m@trixie"
    assert distro_target_name("m", "bookworm", ["bookworm", "trixie"]) == "m@bookworm"
    assert base_tag("trixie") == "pamconform/base:trixie"
    with pytest.raises(LabBuildError):
        base_tag("sid")
    tag = _tag_for("d" * 64, "pamconform/base:trixie", "sha256:x", "trixie")
    assert tag.startswith("pamconform/lab:trixie-") and tag_distro(tag) == "trixie"
    assert _tag_for("d" * 64, "b", "i", "bookworm") != _tag_for("d" * 64, "b", "j", "bookworm")
    assert tag_distro("pamconform/lab:0123456789abcdef") is None


def _target(distro: str, verdicts: dict[str, Verdict]) -> TargetResult:
    t = TargetResult(f"mod@{distro}", "module", "redirector", info={"distro": {"name": distro}})
    for cid, v in verdicts.items():
        case = Case(cid, "R1", Severity.MUST, cid, "req", "redirector", "module",
                    lambda _ctx: None, "suite")
        t.results.append(CaseResult(case, v, "" if v is Verdict.PASS else f"{cid} bad", 0.1))
    return t


def test_distro_differences() -> None:
    old = _target("bookworm", {"a": Verdict.PASS, "b": Verdict.PASS, "c": Verdict.FAIL})
    new = _target("trixie", {"a": Verdict.PASS, "b": Verdict.FAIL, "c": Verdict.FAIL,
                             "d": Verdict.PASS})
    lone = TargetResult("server", "server", "redirector")
    diffs = distro_differences([old, lone, new])
    assert [(d["case"], d["verdicts"]) for d in diffs] == [
        ("b", {"bookworm": "PASS", "trixie": "FAIL"})]
    assert old.info["distro_differences"] == diffs == new.info["distro_differences"]
    assert "distro_differences" not in lone.info
    lines = format_differences(diffs, ["bookworm", "trixie"])
    assert "1 case(s) differ" in lines[0] and "b [R1]: bookworm PASS, trixie FAIL" in lines[1]
    same = [_target("bookworm", {"a": Verdict.PASS}), _target("trixie", {"a": Verdict.PASS})]
    assert distro_differences(same) == []
    assert "no case's verdict differs" in format_differences([], ["bookworm", "trixie"])[0]


# -- the lab on trixie ----------------------------------------------------------------------
@pytest.mark.docker
def test_trixie_lab_image_builds_and_is_cached(docker_client) -> None:
    from pamconform.lab import LabSession, ensure_lab_image

    image = ensure_lab_image(docker_client, ROOT, distro="trixie", progress=lambda _l: None)
    assert image.startswith("pamconform/lab:trixie-")
    start = time.monotonic()
    assert ensure_lab_image(docker_client, ROOT, distro="trixie",
                            progress=lambda _l: None) == image
    assert time.monotonic() - start < 5
    assert docker_client.images.get(image).labels.get("pamconform") == "1"
    with LabSession(docker_client) as session:
        box = session.container(image)
        out = box.run(["dpkg-query", "-W", "-f", "${Package} ${Version}\\n", "libpam0g",
                        "openssh-server"], timeout=15).check().out
        versions = dict(line.split(" ", 1) for line in out.splitlines())
        assert versions["libpam0g"].startswith("1.7"), versions
        assert versions["openssh-server"].startswith("1:10."), versions
        # OpenSSH 10 splits the per-connection code out; the listener is still "sshd".
        assert box.run(["pamconform-start-sshd"], timeout=20).ok
        assert box.run(["pgrep", "-x", "sshd"], timeout=5).ok


@pytest.mark.docker
def test_module_run_on_both_distros_one_report(docker_client, tmp_path: Path) -> None:
    report = tmp_path / "report"
    cmd = [sys.executable, "-m", "pamconform.cli", "module",
           str(resources.modules_dir() / "pam_redirector"), "--args", "{socket} timeout=3",
           "--distro", "bookworm,trixie", "--name", "ref", "--report", str(report), "--quiet"]
    for c in CASES:
        cmd += ["--cases", c]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "release matrix (bookworm, trixie)" in proc.stdout
    data = json.loads((report / "index.json").read_text())
    targets = {t["name"]: t for t in data["targets"]}
    assert set(targets) == {"ref@bookworm", "ref@trixie"}
    expect = {"bookworm": ("1.5.", "1:9.2"), "trixie": ("1.7.", "1:10.")}
    for distro, (pam, ssh) in expect.items():
        t = targets[f"ref@{distro}"]
        assert t["distro"]["name"] == distro
        assert t["distro"]["linux_pam"].startswith(pam), t["distro"]
        assert t["distro"]["openssh"].startswith(ssh), t["distro"]
        assert t["image"].startswith(f"pamconform/lab:{distro}-")
        assert t["distro_differences"] == []
        assert sorted(c["id"] for c in t["cases"]) == sorted(CASES)
        assert {c["verdict"] for c in t["cases"]} == {"PASS"}
    html = (report / "index.html").read_text()
    assert "ref@bookworm" in html and "ref@trixie" in html
