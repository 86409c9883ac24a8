"""The suites as plain pytest items (the pytest plugin)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pamconform.cli.main import REFERENCE_CREDENTIALS
from pamconform.lab.localserver import LocalServer, reference_command

ROOT = Path(__file__).resolve().parents[1]


def _pytest(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        capture_output=True, text=True, timeout=300, check=False, cwd=ROOT,
    )


def test_without_a_target_every_case_skips() -> None:
    proc = _pytest("suites/redirector_server", "--co")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "redir.server.polarity" in proc.stdout
    proc = _pytest("suites/redirector_server", "-k", "polarity or grant-valid", "-rs")
    assert proc.returncode == 0
    assert "2 skipped" in proc.stdout and "no target" in proc.stdout


def test_reference_server_passes_as_pytest() -> None:
    with LocalServer(reference_command(["--idle-timeout", "1"]), REFERENCE_CREDENTIALS) as srv:
        proc = _pytest("suites/redirector_server", "--server", str(srv.socket),
                       "--credentials", "alice:alice-auth-pw", "--idle-limit", "4",
                       "-k", "not concurrent")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert " passed" in proc.stdout and "failed" not in proc.stdout


def test_a_failure_shows_requirement_and_wire_log() -> None:
    with LocalServer(reference_command(), REFERENCE_CREDENTIALS) as srv:
        proc = _pytest("suites/redirector_server", "--server", str(srv.socket),
                       "--credentials", "alice:not-the-password", "-k", "grant-valid")
    assert proc.returncode == 1
    assert "requirement: The server replies exactly 0" in proc.stdout
    assert "send alice\\nnot-the-password\\n" in proc.stdout


def test_bad_target_is_a_usage_error() -> None:
    proc = _pytest("suites/redirector_server", "--server", "/tmp/pc-none.sock",
                   "--credentials", "a:bbbb", "-k", "polarity")
    assert proc.returncode == 4  # pytest's usage error
    assert "no such socket" in proc.stderr
