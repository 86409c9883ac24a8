"""The module fuzzer: the reference module yields no finding, faulty builds are found.

Fixed seed and budget, so the runs are deterministic in what they generate.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pamconform.core import resources
from pamconform.drivers.direct import driver
from pamconform.fuzz.module_fuzz import fuzz_module
from pamconform.lab.module_run import module_lab
from pamconform.lab.module_target import ModuleSpec
from pamconform.protocols.redirector.fuzz_module import Plan, generate

FAULTY = Path(__file__).resolve().parent / "fixtures" / "faulty_modules"

#: fault -> the finding kind that must show up within the budget
FOUND_AS = {
    "grant_non_numeric": "fail-open",
    "oob_read": "memcheck",
    "no_read_timeout": "hung",
}


def _quiet(_line: str) -> None:
    pass


def test_generation_is_deterministic() -> None:
    import random

    a = [generate(random.Random(7)).describe() for _ in range(1)]
    b = [generate(random.Random(7)).describe() for _ in range(1)]
    rng1, rng2 = random.Random(3), random.Random(3)
    assert [generate(rng1).describe() for _ in range(200)] == \
        [generate(rng2).describe() for _ in range(200)]
    assert a == b


def test_only_exact_zero_may_grant() -> None:
    assert Plan("malformed", {}, b"0").may_grant and Plan("malformed", {}, b"0\n").may_grant
    assert not Plan("malformed", {}, b"00").may_grant
    assert not Plan("two-replies", {}, None).may_grant


def _fuzz(spec: ModuleSpec, examples: int, max_findings: int = 1) -> list[str]:
    # bounded by examples (deterministic), not by time; stops at the first finding
    with module_lab(spec, name="fuzz", say=_quiet) as target:
        d = driver(target)
        d.hang_bound = 5.0
        result = fuzz_module(d, seed=1, seconds=120, max_examples=examples,
                             max_findings=max_findings)
    assert result.examples > 0
    return [f.kind for f in result.findings]


@pytest.mark.docker
def test_reference_module_has_no_finding(docker_client: object) -> None:
    spec = ModuleSpec(resources.modules_dir() / "pam_redirector", args="{socket} timeout=2")
    assert _fuzz(spec, 320) == []


@pytest.mark.docker
@pytest.mark.parametrize("fault", sorted(FOUND_AS))
def test_faulty_module_is_found(fault: str, docker_client: object) -> None:
    spec = ModuleSpec(FAULTY, build=f"make clean >/dev/null; make FAULT={fault}",
                      so="pam_faulty.so", args="{socket} timeout=2")
    assert FOUND_AS[fault] in _fuzz(spec, 320)
