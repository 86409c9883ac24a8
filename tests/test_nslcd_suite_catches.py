"""The N-S suite against fake daemons on host sockets: the correct one passes every case
that needs no control of LDAP, and each faulty one is caught on its rule.

The fakes (tests/fixtures/faulty_nslcd_daemons.py) run as separate processes, so a crash
is a real process death. Cases that need an unprivileged peer fork and setuid, so the
socket's directory is made traversable (0755) and the harness must be root for them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from listening import wait_listening

from pamconform.core import loader
from pamconform.core.registry import Case, all_cases
from pamconform.core.runner import TargetResult, run_target
from pamconform.core.verdicts import Verdict
from pamconform.protocols.nslcd.target import HostSocketTarget, Result

ROOT = Path(__file__).resolve().parents[1]
FAKES = ROOT / "tests" / "fixtures" / "faulty_nslcd_daemons.py"

sys.path.insert(0, str(FAKES.parent))
import faulty_nslcd_daemons  # noqa: E402

GALLERY = faulty_nslcd_daemons.GALLERY
IDLE_LIMIT = 3.0

loader.load_suite("nslcd_server")
CASES = all_cases(protocol="nslcd", kind="server")
BY_ID = {c.id: c for c in CASES}
NEEDS_LDAP_CONTROL = {c.id for c in CASES if c.rule == "N-S8"}
NEEDS_ROOT = {"nslcd.server.admin-path-root-only", "nslcd.server.pwmod-asroot-root-only",
              "nslcd.server.unprivileged-peer-password-checked"}

Start = Callable[[str], HostSocketTarget]


@pytest.fixture
def start_fake(short_dir: Path) -> Iterator[Start]:
    """Start fake daemons by name on sockets in a private directory; all stopped after."""
    procs: list[subprocess.Popen[bytes]] = []
    short_dir.chmod(0o755)  # uid 65534 must reach the socket for the peer cases

    def start(name: str) -> HostSocketTarget:
        path = short_dir / f"d{len(procs)}"
        proc = subprocess.Popen([sys.executable, str(FAKES), name, "--socket", str(path)],
                                stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
        procs.append(proc)
        wait_listening(path, proc, f"fake {name}")
        return HostSocketTarget(name, str(path), timeout=3.0, idle_limit=IDLE_LIMIT,
                                ldap_limit=5.0)

    yield start
    for proc in procs:
        proc.kill()
        proc.wait(5)


def run(target: HostSocketTarget, cases: list[Case], *, strict: bool = False) -> TargetResult:
    return run_target(cases, target, kind="server", protocol="nslcd", strict=strict)


def verdicts(result: TargetResult) -> dict[str, Verdict]:
    return {r.case.id: r.verdict for r in result.results}


def test_the_suite_covers_every_daemon_rule() -> None:
    assert {c.rule for c in CASES} == {f"N-S{i}" for i in range(1, 9)}
    assert all(c.id.startswith("nslcd.server.") for c in CASES)


@pytest.mark.skipif(os.geteuid() != 0, reason="the unprivileged-peer cases need root")
def test_correct_fake_passes_every_case_without_ldap_control(start_fake: Start) -> None:
    result = run(start_fake("correct"), CASES)
    got = verdicts(result)
    bad = {cid: (v, r.message) for r in result.results
           if (cid := r.case.id) not in NEEDS_LDAP_CONTROL
           and (v := r.verdict) not in (Verdict.PASS, Verdict.INFORMATIONAL)}
    assert not bad
    assert all(got[cid] is Verdict.SKIPPED for cid in NEEDS_LDAP_CONTROL)
    # the informational cases say why
    assert got["nslcd.server.socket-world-access"] is Verdict.INFORMATIONAL
    assert got["nslcd.server.idle-silent-dropped"] is Verdict.INFORMATIONAL


@pytest.mark.skipif(os.geteuid() != 0, reason="some catches need an unprivileged peer")
@pytest.mark.parametrize("name", sorted(GALLERY))
def test_each_faulty_daemon_is_caught_on_its_rule(start_fake: Start, name: str) -> None:
    spec = GALLERY[name]
    cases = [BY_ID[cid] for cid in spec.catches]
    assert any(c.rule == spec.rule for c in cases), "caught on another rule than it breaks"
    result = run(start_fake(name), cases, strict=True)  # a SHOULD is caught as a FAIL
    missed = {r.case.id: (r.verdict, r.message) for r in result.results
              if r.verdict is not Verdict.FAIL}
    assert not missed, f"{name} ({spec.defect}) not caught"
    for r in result.results:  # a FAIL carries its evidence
        assert r.message.startswith("expected "), r.message
        assert r.evidence.get("wire") or r.evidence.get("notes")


def test_a_cut_string_taken_as_complete_is_non_strict(start_fake: Start) -> None:
    """Like pynslcd: only the client's own right bytes are used, so no MUST is broken."""
    case = BY_ID["nslcd.server.cut-string-not-complete"]
    (r,) = run(start_fake("cut-string-complete"), [case]).results
    assert r.verdict is Verdict.NON_STRICT, r.message
    (r,) = run(start_fake("correct"), [case]).results
    assert r.verdict is Verdict.PASS, r.message
    (r,) = run(start_fake("cut-string-complete"),
               [BY_ID["nslcd.server.stall-mid-string-no-grant"]]).results
    assert r.verdict is Verdict.PASS, r.message


def test_strings_cut_at_a_nul_are_non_strict(start_fake: Start) -> None:
    """Like nslcd: a grant needs the exact password before the NUL, so no MUST is broken."""
    case = BY_ID["nslcd.server.nul-in-credentials"]
    (r,) = run(start_fake("nul-terminated"), [case]).results
    assert r.verdict is Verdict.NON_STRICT, r.message
    (r,) = run(start_fake("correct"), [case]).results
    assert r.verdict is Verdict.PASS, r.message


#: Correct designs and the cases that once graded them wrong: each must now PASS.
CORRECT_VARIANT_CASES = {
    "blank-name-refusals": ("nslcd.server.parallel-verdicts", "nslcd.server.deny-unknown-user",
                            "nslcd.server.deny-wrong-password"),
    "expired-refused-at-authc": ("nslcd.server.parallel-verdicts",
                                 "nslcd.server.authz-expired"),
    "directory-spelling": ("nslcd.server.reply-names-the-user",
                           "nslcd.server.parallel-verdicts"),
    "root-group-writable-dir": ("nslcd.server.socket-not-replaceable",),
}


@pytest.mark.skipif(os.geteuid() != 0, reason="the directory's group is changed")
@pytest.mark.parametrize("name", sorted(CORRECT_VARIANT_CASES))
def test_correct_variants_pass(start_fake: Start, name: str) -> None:
    """A refusal naming no user, an expired account refused at authc, the directory's
    spelling of the name, a directory writable only by root's group: all correct."""
    result = run(start_fake(name), [BY_ID[cid] for cid in CORRECT_VARIANT_CASES[name]])
    bad = {r.case.id: (r.verdict, r.message) for r in result.results
           if r.verdict not in (Verdict.PASS, Verdict.INFORMATIONAL)}
    assert not bad


@pytest.mark.skipif(os.geteuid() != 0, reason="the socket is handed to nobody")
def test_a_socket_owned_by_the_daemons_user_passes(start_fake: Start) -> None:
    """A daemon that binds as root and hands its socket to its user: only that user (or
    root) may own it; named as the daemon's user, it passes."""
    case = BY_ID["nslcd.server.socket-not-replaceable"]
    fake = start_fake("socket-owned-by-daemon-user")
    (r,) = run(fake, [case]).results
    assert r.verdict is Verdict.FAIL and "owned by nobody" in r.message, r.message
    as_daemon = HostSocketTarget(fake.name, fake.socket, daemon_user="nobody")
    (r,) = run(as_daemon, [case]).results
    assert r.verdict is Verdict.PASS, r.message


def test_a_huge_length_waited_out_within_the_idle_limit_passes(start_fake: Start) -> None:
    """Waiting for the declared bytes is a stalled client to the daemon: it has the idle
    limit (N-S5) to give up, not the per-reply timeout."""
    fake = start_fake("waits-out-huge-length")  # gives up after 2 s
    case = BY_ID["nslcd.server.huge-length"]
    patient = HostSocketTarget(fake.name, fake.socket, timeout=1.0, idle_limit=3.0)
    (r,) = run(patient, [case]).results
    assert r.verdict is Verdict.PASS, r.message
    hasty = HostSocketTarget(fake.name, fake.socket, timeout=1.0, idle_limit=1.0)
    (r,) = run(hasty, [case]).results
    assert r.verdict is Verdict.FAIL and "hung" in r.message, r.message


def test_a_crashed_daemon_is_a_fail_not_an_error(start_fake: Start) -> None:
    target = start_fake("crashes-on-huge-length")
    (r,) = run(target, [BY_ID["nslcd.server.huge-length"]]).results
    assert r.verdict is Verdict.FAIL and "Connection refused" in r.message, r.message
    (r,) = run(target, [BY_ID["nslcd.server.deny-wrong-password"]]).results
    assert r.verdict is Verdict.FAIL and "connect" in r.message, r.message


def test_the_wire_log_holds_no_password(start_fake: Start) -> None:
    target = start_fake("correct")
    result = run(target, [BY_ID["nslcd.server.deny-truncated-password"]])
    text = repr(result.results[0].evidence)
    assert "nancy-ldap-p" not in text
    assert "truncated password" in text


def test_result_reads_a_refusing_entry_and_a_close() -> None:
    from pamconform.protocols.nslcd.target import Op

    op = Op("x", (b"",), 0x000D0001, 1.0)
    entry = {"type": "AuthcResult", "authc": 7, "username": "nancy", "authz": 0, "message": ""}
    refused = Result(op, {"ok": True, "entries": [entry], "elapsed_s": 0.1})
    assert not refused.granted and refused.code == 7 and "AUTH_ERR" in refused.describe()
    granted = Result(op, {"ok": True, "entries": [{**entry, "authc": 0}], "elapsed_s": 0.1})
    assert granted.granted and granted.username == "nancy"
    closed = Result(op, {"ok": False, "kind": "closed", "received_len": 8, "elapsed_s": 0.5})
    assert not closed.granted and closed.kind == "closed" and "8 bytes" in closed.describe()
