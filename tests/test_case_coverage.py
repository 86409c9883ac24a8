"""Every server and module case has a faulty target that a test shows it catches.

The galleries (tests/fixtures/faulty_servers.py, faulty_token_servers.py,
faulty_nslcd_daemons.py) name, for each faulty target, the cases that must FAIL it;
tests/test_suite_catches.py, test_token_suite_catches.py and test_nslcd_suite_catches.py
run them. The module tests name, for each faulty build, the cases that must catch it
(tests/test_module_direct.py, test_e2e_module.py, test_token_e2e.py,
test_nslcd_module_lab.py) and run them in the lab. Here: no case is left without one, but
for the exceptions below, each with its reason. MAY cases only report, so they have none.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from pamconform.core import loader
from pamconform.core.registry import all_cases
from pamconform.core.verdicts import Severity

sys.path.insert(0, str(Path(__file__).resolve().parent / "fixtures"))
import faulty_nslcd_daemons
import faulty_servers
import faulty_token_servers
import test_e2e_module
import test_module_direct
import test_nslcd_module_lab
import test_token_e2e

GALLERIES = {"redirector": faulty_servers.GALLERY,
             "transient-token": faulty_token_servers.GALLERY,
             "nslcd": faulty_nslcd_daemons.GALLERY}
SUITES = {"redirector": "redirector_server", "transient-token": "token_server",
          "nslcd": "nslcd_server"}

#: case id -> where its faulty target is instead, or why it has none
EXCEPTIONS = {
    "redir.server.deny-missing-password-line":
        "an in-test server: tests/test_suite_catches.py::"
        "test_a_missing_line_is_graded_by_what_it_gives_away",
    "nslcd.server.cut-string-not-complete":
        "its faulty fake (cut-string-complete) gains nothing, so it is NON-STRICT: "
        "tests/test_nslcd_suite_catches.py::test_a_cut_string_taken_as_complete_is_non_strict",
    "nslcd.server.nul-in-credentials":
        "its faulty fake (nul-terminated) gains nothing, so it is NON-STRICT: "
        "tests/test_nslcd_suite_catches.py::test_strings_cut_at_a_nul_are_non_strict",
    "nslcd.server.ldap-paused":
        "no faulty target yet: it needs a daemon with a directory behind it; it runs "
        "against Debian's nslcd and pynslcd in the lab (tests/test_nslcd_server_lab.py)",
    "nslcd.server.ldap-stopped":
        "no faulty target yet: as nslcd.server.ldap-paused",
}


@pytest.mark.parametrize("protocol", sorted(GALLERIES))
def test_every_server_case_has_a_faulty_target(protocol: str) -> None:
    loader.load_suite(SUITES[protocol])
    checks = {c.id for c in all_cases(protocol=protocol, kind="server")
              if c.severity is not Severity.MAY}
    caught = {c for spec in GALLERIES[protocol].values() for c in spec.catches}
    assert caught <= checks | {c for c in caught if ".regression-" in c}
    missing = checks - caught
    assert missing == {c for c in EXCEPTIONS if c in checks}


MODULE_SUITES = {"redirector": ("redirector_module_direct", "redirector_module_e2e"),
                 "transient-token": ("token_module_e2e",), "nslcd": ("nslcd_module",)}
MODULE_CATCHES = {
    "redirector": [*test_module_direct.CAUGHT_BY.values(), *test_e2e_module.CAUGHT_BY.values()],
    "transient-token": list(test_token_e2e.CAUGHT_BY.values()),
    "nslcd": [list(expected) for expected in test_nslcd_module_lab.CATCHES.values()],
}
#: module case id -> why no faulty build is listed for it
MODULE_EXCEPTIONS = {
    "redir.module.server-reply-before-request":
        "a SHOULD case the reference module itself races on (a byte stream cannot show "
        "when the reply was sent: the case text says why); no build is graded on it",
    **test_nslcd_module_lab.UNCAUGHT,
}


@pytest.mark.parametrize("protocol", sorted(MODULE_SUITES))
def test_every_module_case_has_a_faulty_build(protocol: str) -> None:
    for suite in MODULE_SUITES[protocol]:
        loader.load_suite(suite)
    checks = {c.id for c in all_cases(protocol=protocol, kind="module")
              if c.severity is not Severity.MAY}
    caught = {c for ids in MODULE_CATCHES[protocol] for c in ids}
    assert caught <= checks
    assert checks - caught == {c for c in MODULE_EXCEPTIONS if c in checks}


def test_the_fault_lists_agree() -> None:
    """The token fixture's Makefile and the nslcd module's fault= names are the maps' keys."""
    fixtures = Path(__file__).resolve().parent / "fixtures"
    makefile = (fixtures / "faulty_modules_token" / "Makefile").read_text()
    listed = re.search(r"^FAULTS = (.*?)\n\n", makefile, re.S | re.M)
    assert listed is not None
    assert set(listed.group(1).replace("\\", " ").split()) == set(test_token_e2e.CAUGHT_BY)
    source = (fixtures / "faulty_nslcd_module" / "pam_faulty_nslcd.c").read_text()
    named = set(re.findall(r'has_fault\(fault, "([a-z-]+)"\)', source))
    assert named == set(test_nslcd_module_lab.CATCHES)
