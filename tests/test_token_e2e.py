"""The transient-token module suite in the lab: the reference passes, no_peer_check is caught."""

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


def test_module_without_peer_check_is_caught(docker_client: object) -> None:
    spec = ModuleSpec(FAULTY, so="pam_transient_token.so", args="", protocol="transient-token",
                      build="make REF=/opt/pamconform/modules/pam_transient_token "
                            "FAULT=no_peer_check")
    cases = select(module_cases("transient-token"), ["token.e2e.planted-socket"], [])
    result = run_module(spec, cases, name="faulty:no_peer_check", say=_quiet)
    assert [r.verdict for r in result.results] == [Verdict.FAIL]
