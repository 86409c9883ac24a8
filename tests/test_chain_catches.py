"""The pam_chain suite against stand-in labs: libpam (the model, which the lab test checks
against real libpam 1.5.2) with the reference module's codes, and with faulty ones.

Each faulty module must be caught; the reference must pass as in the lab
(tests/test_chain_lab.py), with no Docker needed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from pamconform.core import loader
from pamconform.core.registry import all_cases
from pamconform.core.runner import TargetResult, run_target
from pamconform.core.verdicts import Verdict
from pamconform.lab.stack import socket_path
from pamconform.lab.stack_cases import StackTarget
from pamconform.model import codes
from pamconform.model.linux_pam import run
from pamconform.model.modules import STATE_CODES, LabModules
from pamconform.model.parser import DictSource, Layout, load


class ModelLab:
    """Answers agent batches as libpam would with a module returning ``module_codes``."""

    def __init__(self, module_codes: Mapping[str, int]) -> None:
        self.modules = LabModules(sockets={socket_path(s): c for s, c in module_codes.items()})
        self.files: dict[str, str] = {}

    def put_files(self, files: Mapping[str, str | bytes]) -> None:
        self.files.update({k: v if isinstance(v, str) else v.decode() for k, v in files.items()})

    def request(self, service: str, *, confdir: str, steps: tuple[str, ...],
                rid: Any = None, **_: Any) -> dict[str, Any]:
        return {"service": service, "confdir": confdir, "steps": steps, "id": rid}

    def run(self, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for req in requests:
            config = load(req["service"], DictSource(self.files), Layout.confdir(req["confdir"]))
            ran = run(config, self.modules, req["steps"], keep_going=True)
            out.append({"status": "ran", "result": {
                "pam_start_name": codes.name(ran.start),
                "steps": [{"step": step, "name": name} for step, name in ran.results()]}})
        return out


def _run(module_codes: Mapping[str, int]) -> dict[str, Verdict]:
    loader.load_suite("pam_chain")
    cases = all_cases(protocol="redirector", kind="stack")
    target = StackTarget("model libpam", ModelLab(module_codes))  # type: ignore[arg-type]
    result: TargetResult = run_target(cases, target, kind="stack", protocol="redirector",
                                      jobs=4)
    return {r.case.id: r.verdict for r in result.results}


def test_the_reference_module_passes_as_in_the_lab() -> None:
    verdicts = _run(STATE_CODES)
    assert {c: v for c, v in verdicts.items()
            if v not in (Verdict.PASS, Verdict.INFORMATIONAL)} == {}
    assert sorted(c for c, v in verdicts.items() if v is Verdict.INFORMATIONAL) == [
        "chain.ignore.primed-with-permit", "chain.jump.past-the-end", "chain.optional.permit",
        "chain.reset.undoes-the-verdict", "chain.sufficient.permit"]


#: fault: (the module's codes, a stack case that shows the grant it leads to)
FAULTS = {
    # grants when the server is down (a module that maps ECONNREFUSED to success)
    "grants-when-down": (dict(STATE_CODES, down=codes.SUCCESS),
                         "chain.jump.debian-common-auth"),
    # PAM_IGNORE when the server is down: `required <module>` + `required pam_permit.so`
    # then grants
    "ignores-when-down": (dict(STATE_CODES, down=codes.IGNORE), "chain.required.permit"),
    # PAM_SUCCESS for a reply it cannot parse
    "grants-garbage": (dict(STATE_CODES, garbage=codes.SUCCESS),
                       "chain.jump.debian-common-auth"),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_a_faulty_module_is_caught(fault: str) -> None:
    module_codes, shows_the_grant = FAULTS[fault]
    verdicts = _run(module_codes)
    failed = sorted(c for c, v in verdicts.items() if v is Verdict.FAIL)
    assert "chain.module-codes" in failed
    # a stack whose outcome the module's code changes: libpam no longer equals the model
    # of the reference module, and the pinned fail-open states changed
    assert shows_the_grant in failed
    assert len(failed) >= 10, failed


#: Cases no module fault can change: their stacks end the same whatever the socket module
#: returns (they pin libpam's own rules, which tests/test_pamstack_model.py and the lab's
#: differential test hold the model to).
MODULE_INDEPENDENT = {"chain.optional.deny", "chain.optional.permit",
                      "chain.substack.done-is-scoped", "chain.sufficient.permit"}


def test_every_other_chain_case_catches_one_of_the_faulty_modules() -> None:
    caught: set[str] = set()
    verdicts: dict[str, Verdict] = {}
    for module_codes, _ in FAULTS.values():
        verdicts = _run(module_codes)
        caught |= {c for c, v in verdicts.items() if v is Verdict.FAIL}
    assert set(verdicts) - caught == MODULE_INDEPENDENT
