"""``pamconform audit``: bad input is exit 2, no engine exit 3; on the shipped example
stacks it flags exactly the known fail-open states (lab)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pamconform.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "stacks"
ALL_BUT_GRANT = ["deny", "down", "hung", "garbage"]

#: example -> (extra arguments, exit code, states flagged FAIL-OPEN)
EXPECTED = {
    "safe/sshd": ([], 0, []),
    "sufficient-after-success/sshd": ([], 1, ALL_BUT_GRANT),
    "all-ignore/sshd": ([], 1, ["down", "hung"]),
    "all-ignore-unprimed/sshd": ([], 0, []),
    "optional/sshd": ([], 1, ALL_BUT_GRANT),
    "single-file/pam.conf": (["--service", "sshd"], 1, ALL_BUT_GRANT),
}


def _audit(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pamconform.cli", "audit", *args],
                          capture_output=True, text=True, timeout=300, check=False, cwd=ROOT,
                          env={**os.environ, **(env or {})})


@pytest.mark.parametrize(("content", "args", "message"), [
    (None, [], "no such file"),
    ("auth required pam_permit.so\n", [], "no socket module line"),
    ("auth required pam_redirector.so /s\n", ["--module-line", "7"], "--module-line 7"),
    ("auth include\nauth required pam_redirector.so /s\n", [], "would crash"),
    ("auth required pam_redirector.so /s \\", [], "cannot use this configuration"),
    ("auth required pam_redirector.so /s\n", ["--stand-in", "maybe"], "--stand-in"),
])
def test_bad_input_is_exit_2(tmp_path: Path, content: str | None, args: list[str],
                             message: str) -> None:
    stack = tmp_path / "sshd"
    if content is not None:
        stack.write_text(content)
    proc = _audit(str(stack), *args, "--report", str(tmp_path / "r"))
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_pam_conf_needs_a_service(tmp_path: Path) -> None:
    proc = _audit(str(EXAMPLES / "single-file" / "pam.conf"))
    assert proc.returncode == 2 and "--service" in proc.stderr


def test_no_engine_is_exit_3(tmp_path: Path) -> None:
    proc = _audit(str(EXAMPLES / "optional" / "sshd"), "--report", str(tmp_path / "r"),
                  env={"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"})
    assert proc.returncode == 3, proc.stderr
    assert "harness error" in proc.stderr


@pytest.mark.docker
@pytest.mark.parametrize("example", sorted(EXPECTED))
def test_examples_flag_exactly_the_fail_open_states(example: str, tmp_path: Path,
                                                    docker_client: object,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    extra, code, flagged = EXPECTED[example]
    report = tmp_path / "report"
    rc = main(["audit", str(EXAMPLES / example), *extra, "--report", str(report)])
    out = capsys.readouterr().out
    assert rc == code, out
    target = json.loads((report / "index.json").read_text())["targets"][0]
    assert target["kind"] == "stack"
    failed = [c["id"].removeprefix("audit.") for c in target["cases"] if c["verdict"] == "FAIL"]
    assert failed == flagged, out
    assert target["cases"][0]["id"] == "audit.grant"
    assert all(c["verdict"] == "PASS" for c in target["cases"] if c["id"] == "audit.grant")
    for state in flagged:
        assert f"FAIL-OPEN with the server {state}:" in out
        case = next(c for c in target["cases"] if c["id"] == f"audit.{state}")
        assert "PAM_SUCCESS was set by" in case["message"]
        assert case["evidence"]["trace"].startswith("authenticate: PAM_SUCCESS")
    assert "(differs)" not in out
