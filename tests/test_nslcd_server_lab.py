"""The N-S suite against Debian 12's real nslcd and pynslcd in the nslcd lab, side by side.

Needs a Docker engine (skips without one). Every case runs against both daemons in one
container (slapd is stopped and paused by the N-S8 cases, one daemon at a time). The
verdict table is printed and written to ``$PAMCONFORM_NSLCD_TABLE`` when set (docs/nslcd.md
holds the recorded one). What the daemons did is asserted: every case reaches a verdict
(no ERROR, no hang of the suite), and the findings recorded in docs/nslcd.md hold.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pamconform.core import loader
from pamconform.core.registry import all_cases
from pamconform.core.runner import TargetResult, run_target
from pamconform.core.verdicts import Verdict
from pamconform.lab import LabSession
from pamconform.protocols.nslcd.lab import ensure_nslcd_image, start_nslcd_lab
from pamconform.protocols.nslcd.target import LabDaemonTarget

pytestmark = pytest.mark.docker

DAEMONS = ("nslcd", "pynslcd")

#: What Debian 12's packages are graded, case by case, where it is not PASS or
#: INFORMATIONAL (docs/nslcd.md says why). A set holds the verdicts seen across runs.
NS, FAIL, INFO = Verdict.NON_STRICT, Verdict.FAIL, Verdict.INFORMATIONAL
RECORDED: dict[str, dict[str, set[Verdict]]] = {
    "nslcd": {
        "nslcd.server.authz-locked": {NS},
        "nslcd.server.nul-in-credentials": {NS},
    },
    "pynslcd": {
        "nslcd.server.deny-empty-password": {NS},
        "nslcd.server.deny-unknown-user": {NS},
        "nslcd.server.admin-path-root-only": {NS},
        "nslcd.server.authz-expired": {FAIL},
        "nslcd.server.authz-locked": {NS},
        "nslcd.server.cut-string-not-complete": {NS},
        # now and then one right password of 15 in flight gets a close
        "nslcd.server.parallel-verdicts": {INFO, NS},
    },
}


@pytest.fixture(scope="module")
def results(docker_client: Any) -> Iterator[dict[str, TargetResult]]:
    loader.load_suite("nslcd_server")
    cases = all_cases(protocol="nslcd", kind="server")
    image = ensure_nslcd_image(docker_client)
    out: dict[str, TargetResult] = {}
    with LabSession(docker_client) as session:
        lab = start_nslcd_lab(session, image)
        for daemon in DAEMONS:
            target = LabDaemonTarget(lab, daemon, timeout=10.0, idle_limit=10.0,
                                     ldap_limit=15.0)
            out[daemon] = run_target(cases, target, kind="server", protocol="nslcd")
    table = verdict_table(out)
    print("\n" + table)
    dest = os.environ.get("PAMCONFORM_NSLCD_TABLE")
    if dest:
        Path(dest).write_text(table + "\n")
    yield out


def verdict_table(results: dict[str, TargetResult]) -> str:
    """A Markdown table: one row a case, one column a daemon."""
    first = results[DAEMONS[0]]
    lines = ["| case | rule | " + " | ".join(DAEMONS) + " |",
             "|---|---|" + "---|" * len(DAEMONS)]
    by_daemon = {d: {r.case.id: r for r in results[d].results} for d in DAEMONS}
    for r in first.results:
        cells = []
        for d in DAEMONS:
            v = by_daemon[d][r.case.id].verdict
            cells.append(f"**{v}**" if v in (Verdict.FAIL, Verdict.NON_STRICT) else str(v))
        lines.append(f"| `{r.case.id}` | {r.case.rule} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


@pytest.mark.parametrize("daemon", DAEMONS)
def test_every_case_reaches_a_verdict(results: dict[str, TargetResult], daemon: str) -> None:
    errors = {r.case.id: r.message for r in results[daemon].results
              if r.verdict in (Verdict.ERROR, Verdict.SKIPPED)}
    assert not errors


@pytest.mark.parametrize("daemon", DAEMONS)
def test_verdicts_are_the_recorded_ones(results: dict[str, TargetResult], daemon: str) -> None:
    got = {r.case.id: r.verdict for r in results[daemon].results}
    expected = {cid: RECORDED[daemon].get(cid, {Verdict.PASS, INFO}) for cid in got}
    differ = {cid: (sorted(expected[cid]), str(got[cid])) for cid in got
              if got[cid] not in expected[cid]}
    assert not differ
