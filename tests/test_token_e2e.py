"""The transient-token module suite in the lab: the reference passes, each faulty build is
caught by the cases listed for it."""

from __future__ import annotations

from pathlib import Path

import pytest

from pamconform.core import resources, runner
from pamconform.core.runner import select
from pamconform.core.verdicts import Verdict
from pamconform.lab.module_run import module_cases, run_module
from pamconform.lab.module_target import ModuleSpec

pytestmark = pytest.mark.docker

FAULTY = Path(__file__).resolve().parent / "fixtures" / "faulty_modules_token"


def _quiet(_line: str) -> None:
    pass


@pytest.mark.parametrize("jobs", [1, 8])
def test_reference_token_module_passes(docker_client: object, jobs: int) -> None:
    """One case at a time and side by side (as ``run`` runs them: each fake token server
    has a path of its own; the timed hang runs alone)."""
    spec = ModuleSpec(resources.modules_dir() / "pam_transient_token",
                      so="pam_transient_token.so", args="", protocol="transient-token")
    runner.set_jobs(jobs)
    try:
        result = run_module(spec, module_cases("transient-token"), name="reference",
                            say=_quiet)
    finally:
        runner.set_jobs(None)
    assert len(result.results) >= 10
    assert {r.case.id: r.message for r in result.results if r.verdict is not Verdict.PASS} == {}
    assert {r.case.rule for r in result.results} == {"T-M1", "T-M2", "T-M3"}


#: fault -> the cases that must FAIL for it (tests/fixtures/faulty_modules_token)
CAUGHT_BY = {
    "no_peer_check": ["token.e2e.planted-socket"],
    "any_reply": ["token.e2e.garbage-reply"],
    "prefix_reply": ["token.e2e.short-reply"],
    "no_read_timeout": ["token.e2e.hung-server"],
    "truncated_token": ["token.e2e.ssh-valid-token-granted", "token.e2e.su-valid-token-granted"],
    # a missing, planted or silent server: each is PAM_AUTHINFO_UNAVAIL turned into a grant
    "unreachable_success": ["token.e2e.no-server", "token.e2e.planted-socket",
                            "token.e2e.symlinked-socket", "token.e2e.hung-server"],
    "no_uid_check": ["token.e2e.other-users-token-refused"],
    "huge_token_copy": ["token.e2e.su-survives-huge-token"],
    "lax_secret": ["token.e2e.malformed-token"],
}


@pytest.mark.parametrize("fault", sorted(CAUGHT_BY))
def test_faulty_token_module_is_caught(fault: str, docker_client: object) -> None:
    spec = ModuleSpec(FAULTY, so="pam_transient_token.so", args="", protocol="transient-token",
                      build=f"make REF=/opt/pamconform/modules/pam_transient_token FAULT={fault}")
    cases = select(module_cases("transient-token"), CAUGHT_BY[fault], [])
    result = run_module(spec, cases, name=f"faulty:{fault}", say=_quiet)
    assert len(result.results) == len(CAUGHT_BY[fault])
    missed = {r.case.id: (r.verdict, r.message) for r in result.results
              if r.verdict is not Verdict.FAIL}
    assert missed == {}
