"""The server suite against known targets: the reference passes, every faulty server is caught.

Each faulty server of the gallery has one defect; the cases of its rule run against it
(strict, so SHOULD-level defects count) and every case it lists must FAIL.
"""

from __future__ import annotations

import pytest

from pamconform import gallery, loader
from pamconform.cli import REFERENCE_CREDENTIALS
from pamconform.context import ServerTarget
from pamconform.localserver import LocalServer, reference_command
from pamconform.registry import Case, all_cases
from pamconform.runner import TargetResult, run_target
from pamconform.verdicts import Severity, Verdict

PAIRS = [(u.encode(), p.encode()) for u, p in REFERENCE_CREDENTIALS]
GALLERY = gallery.load().GALLERY
COMMANDS = gallery.commands()


@pytest.fixture(scope="module")
def cases() -> list[Case]:
    loader.load_suite("redirector_server")
    return all_cases(protocol="redirector", kind="server")


def _run(command, cases: list[Case], name: str, *, strict: bool) -> TargetResult:
    with LocalServer(command, REFERENCE_CREDENTIALS, name=name) as server:
        target = ServerTarget(name, server.socket, "redirector", PAIRS, timeout=3.0,
                              idle_limit=8.0)
        return run_target(cases, target, kind="server", protocol="redirector", strict=strict)


def test_reference_server_passes_every_must_case(cases: list[Case]) -> None:
    result = _run(reference_command(["--idle-timeout", "2"]), cases, "reference", strict=True)
    bad = {r.case.id: (r.verdict, r.message) for r in result.results
           if r.verdict not in (Verdict.PASS, Verdict.INFORMATIONAL)}
    assert bad == {}
    musts = [r for r in result.results if r.case.severity is Severity.MUST]
    assert musts and all(r.verdict is Verdict.PASS for r in musts)


def test_gallery_covers_every_rule() -> None:
    assert len(GALLERY) >= 10
    assert {spec.rule for spec in GALLERY.values()} == {f"R-S{i}" for i in range(1, 8)}


@pytest.mark.parametrize("name", sorted(GALLERY))
def test_faulty_server_is_caught(name: str, cases: list[Case]) -> None:
    spec = GALLERY[name]
    known = {c.id for c in cases}
    assert set(spec.catches) <= known, f"{name} names unknown cases"
    rule_cases = [c for c in cases if c.rule == spec.rule or c.id in spec.catches]
    result = _run(COMMANDS[name], rule_cases, f"faulty:{name}", strict=True)
    verdicts = {r.case.id: r for r in result.results}
    for case_id in spec.catches:
        r = verdicts[case_id]
        assert r.verdict is Verdict.FAIL, f"{case_id} did not catch {name}: {r.verdict} {r.message}"
