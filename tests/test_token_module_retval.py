"""Build the reference pam_transient_token module and run its C return-value test."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

MODULE_DIR = Path(__file__).resolve().parents[1] / "modules" / "pam_transient_token"
PAM_HEADER = Path("/usr/include/security/pam_modules.h")
TIMEOUT_S = 300


def test_token_module_retval() -> None:
    """`make test` builds pam_transient_token.so and every return-value check passes."""
    for tool in ("cc", "make"):
        if shutil.which(tool) is None:
            pytest.skip(f"`{tool}` is not on PATH")
    if not PAM_HEADER.exists():
        pytest.skip(f"PAM headers missing ({PAM_HEADER}): install libpam0g-dev")

    try:
        result = subprocess.run(["make", "-C", str(MODULE_DIR), "test"], capture_output=True,
                                text=True, timeout=TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout or ""
        if isinstance(out, bytes):
            out = out.decode(errors="replace")
        pytest.fail(f"make test did not finish within {TIMEOUT_S} s\n{out}")

    assert result.returncode == 0, (
        f"make -C {MODULE_DIR} test exited {result.returncode}\n"
        f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
    )
    assert " 0 failed" in result.stdout, result.stdout
    assert "never logs the token's secret" in result.stdout, result.stdout
