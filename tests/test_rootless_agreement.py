"""The lab and the root-less tier (``module --no-lab``) agree, case by case.

For the reference module and every build of the faulty gallery
(tests/fixtures/faulty_modules, ``make FAULT=<name>``), the direct-driver cases run
once in the lab (ONE lab container: each build is installed in turn) and once on the
host as ``nobody`` (one run per build).  Every case that ran in both
tiers (neither SKIPPED) must have the same verdict.  Memcheck cases are compared on the
reference and the R-M3 faults only (two of them each): valgrind makes every attempt cost
~1-2 s per tier.  Figure (2 cores, shared): about 6-8 minutes for 16 builds
(benchmarks/README.md).
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from rootless_user import Nobody, can_drop, nobody_workdir, verdicts

from pamconform.core import resources
from pamconform.core.runner import run_target, select
from pamconform.drivers.direct import driver
from pamconform.lab.module_run import module_cases, module_lab
from pamconform.lab.module_target import ModuleSpec, ModuleTarget

pytestmark = [
    pytest.mark.docker,
    pytest.mark.skipif(not can_drop(), reason="needs root to become nobody (setpriv)"),
]

FAULTY = Path(__file__).resolve().parent / "fixtures" / "faulty_modules"
ARGS, BOUND = "{socket} timeout=2", 4.0
DIRECT = ["redir.module.*"]
NO_MEMCHECK = ["redir.module.memcheck-*"]
MEMCHECK = ["redir.module.memcheck-grant", "redir.module.memcheck-reply-4k-digits"]
#: the builds compared on memcheck cases too: the reference and the R-M3 faults
WITH_MEMCHECK = {"reference"} | {f["name"] for f in json.loads(
    (FAULTY / "faults.json").read_text()) if f["rule"] == "R-M3"}
#: the reference module's SHOULD check of an early reply races the reply (test_module_direct)
RACY = {"redir.module.server-reply-before-request"}
#: at least this many cases run in both tiers for each build (the comparison is not vacuous)
MIN_COMPARED = 38


def _builds() -> list[tuple[str, ModuleSpec]]:
    ref = ModuleSpec(resources.modules_dir() / "pam_redirector", args=ARGS, hang_bound=BOUND)
    out = [("reference", ref)]
    for fault in json.loads((FAULTY / "faults.json").read_text()):
        name = fault["name"]
        out.append((name, ModuleSpec(FAULTY, build=f"make clean >/dev/null; make FAULT={name}",
                                     so="pam_faulty.so", args=ARGS, hang_bound=BOUND)))
    return out


def _case_ids(name: str) -> list[str]:
    every = module_cases("redirector")
    chosen = select(every, DIRECT, NO_MEMCHECK)
    if name in WITH_MEMCHECK:
        chosen += select(every, MEMCHECK, [])
    return [c.id for c in chosen]


def _lab(builds: list[tuple[str, ModuleSpec]]) -> dict[str, dict[str, tuple[str, str]]]:
    """Every build in one lab container: case id -> (verdict, message), per build."""
    every = {c.id: c for c in module_cases("redirector")}
    out: dict[str, dict[str, tuple[str, str]]] = {}
    first_name, first_spec = builds[0]
    with module_lab(first_spec, name=first_name) as first:
        for name, spec in builds:
            if name == first_name:
                target = first
            else:
                target = ModuleTarget(name, first.box, spec)
                target.install()
            cases = [every[i] for i in _case_ids(name)]
            try:
                result = run_target(cases, target, kind="module", protocol="redirector")
            finally:
                driver(target).stop_scenarios()
            out[name] = {r.case.id: (str(r.verdict), r.message) for r in result.results}
    return out


def _host(nobody: Nobody, name: str, spec: ModuleSpec) -> dict[str, tuple[str, str]]:
    picks = [a for cid in _case_ids(name) for a in ("--cases", cid)]
    code, out, index = nobody.pamconform(
        "module", str(spec.src), "--no-lab", "--build", spec.build, "--so", spec.so,
        "--args", spec.args, "--hang-bound", str(BOUND), *picks)
    assert index, f"{name}: no report (exit {code}): {out[-2000:]}"
    return verdicts(index)


def _differences(lab: dict[str, tuple[str, str]],
                 host: dict[str, tuple[str, str]]) -> tuple[int, list[Any]]:
    """How many cases ran in both tiers, and those whose verdicts differ (each with both
    verdicts and messages: the evidence a flaky difference leaves)."""
    both = [c for c in lab if c in host and "SKIPPED" not in (lab[c][0], host[c][0])
            and c not in RACY]
    return len(both), [(c, lab[c], host[c]) for c in both if lab[c][0] != host[c][0]]


def test_lab_and_rootless_tiers_agree(docker_client: object) -> None:
    builds = _builds()
    with nobody_workdir() as workdir, ThreadPoolExecutor(1) as pool:
        nobody = Nobody(workdir)
        # the host runs go on beside the lab run (one at a time each)
        futures = {name: pool.submit(_host, nobody, name, spec) for name, spec in builds}
        lab = _lab(builds)
        host = {name: f.result(timeout=1800) for name, f in futures.items()}
    problems = {}
    for name, _ in builds:
        compared, diffs = _differences(lab[name], host[name])
        if diffs or compared < MIN_COMPARED:
            problems[name] = (compared, diffs)
    assert problems == {}
