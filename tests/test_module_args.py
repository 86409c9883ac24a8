"""``{secret:NAME}`` in module arguments: substituted from the environment, never shown."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pamconform.core import module_args, redaction
from pamconform.core.errors import UsageError

ROOT = Path(__file__).resolve().parents[1]
SECRET = "MdlArgS3cretXy77"


@pytest.fixture
def own_redactor(monkeypatch: pytest.MonkeyPatch) -> redaction.Redactor:
    red = redaction.Redactor()
    monkeypatch.setattr(redaction, "_CURRENT", red)
    return red


def test_a_secret_argument_is_substituted_and_registered(
        monkeypatch: pytest.MonkeyPatch, own_redactor: redaction.Redactor) -> None:
    monkeypatch.setenv("PC_KEY", SECRET)
    line = module_args.expand("{socket} timeout=3 apikey={secret:PC_KEY}", "/run/s")
    assert line == f"/run/s timeout=3 apikey={SECRET}"
    shown = own_redactor.text(f"module line: pam_x.so {line}; half: {SECRET[:9]}")
    assert SECRET[:8] not in shown and "module argument PC_KEY, 16 bytes" in shown


@pytest.mark.parametrize(("value", "says"), [
    (None, "is not set"), ("abc", "shorter than 4 bytes"), ("two words", "white space")])
def test_an_unusable_secret_argument_is_one_usage_error(
        monkeypatch: pytest.MonkeyPatch, own_redactor: redaction.Redactor,
        value: str | None, says: str) -> None:
    if value is None:
        monkeypatch.delenv("PC_KEY", raising=False)
    else:
        monkeypatch.setenv("PC_KEY", value)
    with pytest.raises(UsageError, match=says):
        module_args.expand("{socket} apikey={secret:PC_KEY}", "/run/s")


@pytest.mark.skipif(os.geteuid() != 0 and not os.access("/usr/include/security", os.R_OK),
                    reason="the root-less tier needs the PAM headers")
def test_a_module_run_never_shows_the_secret(tmp_path: Path) -> None:
    """Root-less tier: the value goes into the stack; the report and the console show
    the placeholder or the marker."""
    env = {**os.environ, "PC_MOD_SECRET": SECRET, "PYTHONPATH": str(ROOT)}
    report = tmp_path / "r"
    proc = subprocess.run(
        [sys.executable, "-m", "pamconform.cli", "module", str(ROOT / "modules/pam_redirector"),
         "--no-lab", "--args", "{socket} timeout=3 apikey={secret:PC_MOD_SECRET}",
         "--cases", "redir.module.grant", "--report", str(report)],
        capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path, check=False)
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    texts = [proc.stdout, proc.stderr] + [p.read_text(errors="replace")
                                         for p in report.rglob("*") if p.is_file()]
    assert not any(SECRET[:8] in t for t in texts)
    assert any("{secret:PC_MOD_SECRET}" in t for t in texts)  # the arguments as given
