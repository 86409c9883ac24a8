"""The end-to-end module suite: the reference module passes, faulty builds are caught.

Each faulty build (``tests/fixtures/faulty_modules``, ``make FAULT=<name>``) runs in its
own lab container against the cases that must catch it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pamconform.core import resources
from pamconform.core.runner import select
from pamconform.core.verdicts import Verdict
from pamconform.lab.module_run import module_cases, run_module
from pamconform.lab.module_target import ModuleSpec

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[1]
FAULTY = ROOT / "tests" / "fixtures" / "faulty_modules"

#: fault -> the cases that must FAIL for it
CAUGHT_BY = {
    "grant_on_eof": ["redir.e2e.ssh-close-without-reply-denied",
                     "redir.e2e.su-close-without-reply-denied"],
    "no_read_timeout": ["redir.e2e.ssh-server-hung-denied", "redir.e2e.su-server-hung-denied"],
    "truncated_password": ["redir.e2e.ssh-grant", "redir.e2e.ssh-password-grant",
                           "redir.e2e.su-grant"],
    "newline_required": ["redir.e2e.ssh-grant", "redir.e2e.ssh-password-grant",
                         "redir.e2e.su-grant"],
    # the server's 1 for a wrong password, the Unix password, an unknown user: all let in
    "grant_any_reply": ["redir.e2e.ssh-wrong-password-denied",
                        "redir.e2e.ssh-password-wrong-password-denied",
                        "redir.e2e.su-wrong-password-denied", "redir.e2e.unix-password-denied",
                        "redir.e2e.unknown-user-denied"],
    "unreachable_success": ["redir.e2e.ssh-server-down-denied",
                            "redir.e2e.su-server-down-denied"],
    # the abuse logins must all be denied: a reset grants here (atoi of nothing is 0)
    "grant_non_numeric": ["redir.e2e.sshd-survives-abuse"],
}


def _quiet(_line: str) -> None:
    pass


def test_reference_module_passes_every_case(docker_client: object) -> None:
    spec = ModuleSpec(resources.modules_dir() / "pam_redirector", args="{socket} timeout=3")
    cases = select(module_cases("redirector"), ["redir.e2e.*"], [])
    result = run_module(spec, cases, name="reference", say=_quiet, login_timeout=15)
    verdicts = {r.case.id: (r.verdict, r.message) for r in result.results}
    assert len(verdicts) >= 15
    assert {k: v for k, v in verdicts.items() if v[0] is not Verdict.PASS} == {}
    assert all(result.info["lab_checks"].values())


@pytest.mark.parametrize("fault", sorted(CAUGHT_BY))
def test_faulty_module_is_caught(fault: str, docker_client: object) -> None:
    spec = ModuleSpec(FAULTY, build=f"make clean >/dev/null; make FAULT={fault}",
                      so="pam_faulty.so", args="{socket} timeout=3")
    cases = select(module_cases("redirector"), CAUGHT_BY[fault], [])
    result = run_module(spec, cases, name=f"faulty:{fault}", say=_quiet, login_timeout=8)
    assert len(result.results) == len(CAUGHT_BY[fault])
    for r in result.results:
        assert r.verdict is Verdict.FAIL, f"{r.case.id} missed {fault}: {r.verdict}"


def test_build_failure_is_exit_2_with_compiler_output(docker_client: object,
                                                      tmp_path: Path) -> None:
    (tmp_path / "Makefile").write_text("all:\n\tcc -shared -o pam_x.so broken.c\n")
    (tmp_path / "broken.c").write_text("int main( { this is not C }\n")
    proc = subprocess.run(
        [sys.executable, "-m", "pamconform.cli", "module", str(tmp_path), "--so", "pam_x.so",
         "--report", str(tmp_path / "report")],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert "build of" in proc.stderr and "broken.c" in proc.stderr
    assert "Traceback" not in proc.stderr
