"""The N-S suite against Debian 12's real nslcd and pynslcd in the nslcd lab, side by side.

Needs a Docker engine (skips without one). Every case runs against both daemons in one
container (slapd is stopped and paused by the N-S8 cases, one daemon at a time). The
verdict table is printed and written to ``$PAMCONFORM_NSLCD_TABLE`` when set (docs/nslcd.md
holds the recorded one). What the daemons did is asserted: every case reaches a verdict
(no ERROR, no hang of the suite), and the findings recorded in docs/nslcd.md hold.
pynslcd's N-S6 result is nondeterministic (it sometimes writes one request's answer to
another's connection): either outcome is accepted, a FAIL only with that evidence. The
grading of that event is tested here without Docker too. The same fault closes, now and
then, a later client's connection under it, so any pynslcd case that did not get its
recorded verdict runs once more and fails the test only if it repeats (seen in CI: a
refusal that came as a close, and one client of the 15 of N-S6 left with no answer).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pamconform.core import loader
from pamconform.core.outcome import Fail
from pamconform.core.registry import all_cases
from pamconform.core.runner import CaseResult, TargetResult, run_target
from pamconform.core.verdicts import Verdict
from pamconform.core.wirelog import WireLog
from pamconform.lab import LabSession
from pamconform.protocols.nslcd.lab import ensure_nslcd_image, start_nslcd_lab
from pamconform.protocols.nslcd.server_steps import until_granted
from pamconform.protocols.nslcd.target import LabDaemonTarget, Op, Result

docker_lab = pytest.mark.docker

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
        # now and then one right password of 15 in flight gets a close; a FAIL is
        # accepted only as the recorded cross-talk (see crossed_talk)
        "nslcd.server.parallel-verdicts": {INFO, NS},
    },
}
#: A case whose FAIL is accepted too, if it carries this evidence (daemon, case, words).
NONDETERMINISTIC_FAIL = {("pynslcd", "nslcd.server.parallel-verdicts"): "cross-talk"}
#: Daemons whose verdicts vary run to run (pynslcd's late closes, docs/nslcd.md): a case
#: that did not get its recorded verdict runs once more, and fails the test only if the
#: second run does not get it either (both results are shown). nslcd gets no second try.
RERUN = {"pynslcd"}
#: The second runs, by daemon and case id (filled by the ``results`` fixture).
RERUNS: dict[str, dict[str, CaseResult]] = {}

N_S6 = next(m for m in loader.load_suite("nslcd_server")
            if m.__name__.endswith(".n_s6_concurrency"))


def unexplained(daemon: str, results: list[CaseResult],
                reruns: dict[str, CaseResult]) -> dict[str, Any]:
    """Case id -> (verdict, message) of each run, for the cases whose verdict is not a
    recorded one, on a second run too when there was one."""
    out = {}
    for r in results:
        again = reruns.get(r.case.id)
        if not accepted(daemon, r) and (again is None or not accepted(daemon, again)):
            out[r.case.id] = [(str(x.verdict), x.message) for x in (r, again) if x]
    return out


def accepted(daemon: str, r: CaseResult) -> bool:
    """The verdict is a recorded one, or the recorded nondeterministic FAIL with its evidence."""
    if r.verdict in RECORDED[daemon].get(r.case.id, {Verdict.PASS, INFO}):
        return True
    words = NONDETERMINISTIC_FAIL.get((daemon, r.case.id))
    return (r.verdict is FAIL and words is not None and words in r.message
            and "SUCCESS" in r.message)


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
            # the second daemon went through the first one's N-S8 outages: it may need a
            # request to reconnect (seen once under load: pynslcd closed the first case's)
            settled = until_granted(target, WireLog(), 15.0, "settle")
            assert settled.granted, f"{daemon} did not grant the right password in 15 s"
            out[daemon] = run_target(cases, target, kind="server", protocol="nslcd")
            again = [r.case for r in out[daemon].results
                     if daemon in RERUN and not accepted(daemon, r)]
            if again:  # a nondeterministic daemon: what does not repeat is its noise
                redo = run_target(again, target, kind="server", protocol="nslcd")
                RERUNS[daemon] = {r.case.id: r for r in redo.results}
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


@docker_lab
@pytest.mark.parametrize("daemon", DAEMONS)
def test_every_case_reaches_a_verdict(results: dict[str, TargetResult], daemon: str) -> None:
    errors = {r.case.id: r.message for r in results[daemon].results
              if r.verdict in (Verdict.ERROR, Verdict.SKIPPED)}
    assert not errors


@docker_lab
@pytest.mark.parametrize("daemon", DAEMONS)
def test_verdicts_are_the_recorded_ones(results: dict[str, TargetResult], daemon: str) -> None:
    assert not unexplained(daemon, results[daemon].results, RERUNS.get(daemon, {}))


# The grading of N-S6's cross-talk, on replies like those pynslcd gave (no Docker).

def _authc(label: str, code: int | None, user: str = "", *, failed: str = "closed") -> Result:
    op = Op(label, (b"",), 0x000d, 5.0)
    if code is None:
        return Result(op, {"ok": False, "kind": failed, "elapsed_s": 0.01})
    entry = {"type": "AuthcResult", "authc": code, "username": user, "authz": 0}
    return Result(op, {"ok": True, "entries": [entry], "elapsed_s": 0.01})


def test_a_wrong_password_granted_as_another_user_is_a_cross_talk_fail() -> None:
    results = [_authc("round 1: right password of oscar", 0, "oscar"),
               _authc("round 1: right password of nancy", None, failed="timeout"),  # not first
               _authc("round 3: wrong password of nancy", 0, "oscar")]
    with pytest.raises(Fail) as caught:
        N_S6.check_no_wrong_grant(results, [True, True, False])
    text = str(caught.value)
    assert "no grant for round 3: wrong password of nancy" in text
    assert "user 'oscar'" in text and "cross-talk" in text and "another request" in text


def test_a_wrong_password_granted_as_its_own_user_is_a_fail() -> None:
    with pytest.raises(Fail, match=r"cross-talk.*right password was in flight"):
        N_S6.check_no_wrong_grant([_authc("round 3: wrong password of nancy", 0, "nancy")],
                                  [False])


def test_a_right_password_granted_naming_another_user_is_a_fail() -> None:
    with pytest.raises(Fail, match="a grant naming 'oscar'"):
        N_S6.check_no_wrong_grant([_authc("round 2: right password of oscar", 0, "nancy")],
                                  [True])


def test_own_grants_and_refusals_pass_the_grant_check() -> None:
    results = [_authc("round 1: right password of nancy", 0, "Nancy"),
               _authc("round 1: wrong password of nancy", 7, "nancy"),
               _authc("round 1: empty password of oscar", None),
               _authc("round 1: wrong password of ghost", 7, "nancy")]  # crossed, refused
    N_S6.check_no_wrong_grant(results, [True, False, False, False])


def _case(case_id: str) -> Any:
    return next(c for c in all_cases(protocol="nslcd", kind="server") if c.id == case_id)


def test_only_a_cross_talk_fail_is_accepted_for_pynslcd() -> None:
    case = _case("nslcd.server.parallel-verdicts")
    crossed = ("expected no grant for round 3: wrong password of nancy; got authc SUCCESS, "
               "user 'oscar'. cross-talk: ...")
    assert accepted("pynslcd", CaseResult(case, FAIL, crossed, 1.0))
    assert accepted("pynslcd", CaseResult(case, NS, "right passwords refused", 1.0))
    assert not accepted("pynslcd", CaseResult(case, FAIL, "expected an answer; got hung", 1.0))
    assert not accepted("nslcd", CaseResult(case, FAIL, crossed, 1.0))


def test_a_close_that_does_not_repeat_is_pynslcd_noise() -> None:
    case = _case("nslcd.server.deny-case-changed-password")
    closed = CaseResult(case, NS, "case-changed password #1 of nancy (13 B) was refused by "
                        "a closed connection, not a refusing reply", 1.0)
    refused = CaseResult(case, Verdict.PASS, "refused", 1.0)
    assert not accepted("pynslcd", closed)
    assert unexplained("pynslcd", [closed], {case.id: refused}) == {}
    assert list(unexplained("pynslcd", [closed], {case.id: closed})) == [case.id]
    assert list(unexplained("nslcd", [closed], {})) == [case.id]  # nslcd: no second run


def test_a_deviation_that_does_not_repeat_is_noise_one_that_does_is_not() -> None:
    case = _case("nslcd.server.parallel-verdicts")
    hung = CaseResult(case, FAIL, "expected an answer within 10 s under load; got hung", 1.0)
    calm = CaseResult(case, INFO, "15 answers, no cross-talk", 1.0)
    assert unexplained("pynslcd", [hung], {case.id: calm}) == {}
    assert unexplained("pynslcd", [hung], {case.id: hung}) == {
        case.id: [(str(FAIL), hung.message)] * 2}
    assert list(unexplained("pynslcd", [hung], {})) == [case.id]
    assert unexplained("pynslcd", [calm], {}) == {}
