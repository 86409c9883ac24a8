"""The server suite against known targets: the reference passes, every faulty server is caught.

Each faulty server of the gallery has one defect; the cases it lists run against it
(strict, so SHOULD-level defects count) and every one must FAIL.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from pamconform.cli.main import REFERENCE_CREDENTIALS
from pamconform.core import loader
from pamconform.core.context import ServerTarget
from pamconform.core.registry import Case, all_cases
from pamconform.core.runner import TargetResult, run_target
from pamconform.core.verdicts import Severity, Verdict
from pamconform.lab import gallery
from pamconform.lab.localserver import LocalServer, reference_command

PAIRS = [(u.encode(), p.encode()) for u, p in REFERENCE_CREDENTIALS]
GALLERY = gallery.load().GALLERY
CORRECT = gallery.load().CORRECT
POLICIES = gallery.load().POLICIES
NARROW_POLICIES = gallery.load().NARROW_POLICIES
COMMANDS = gallery.commands()


def fixture_command(name: str):  # type: ignore[no-untyped-def]
    """The command line of any server of the gallery module (faulty or correct)."""
    path = gallery.fixtures_dir() / "faulty_servers.py"

    def command(sock: Path, creds: Path) -> list[str]:
        return [sys.executable, str(path), name, str(sock), str(creds),
                "--allow-uid", str(os.getuid())]

    return command


@pytest.fixture(scope="module")
def cases() -> list[Case]:
    loader.load_suite("redirector_server")
    return all_cases(protocol="redirector", kind="server")


def _run(command, cases: list[Case], name: str, *, strict: bool) -> TargetResult:
    with LocalServer(command, REFERENCE_CREDENTIALS, name=name) as server:
        pid = server.proc.pid if server.proc is not None else None
        target = ServerTarget(name, server.socket, "redirector", PAIRS, timeout=3.0,
                              idle_limit=8.0, pid=pid)
        return run_target(cases, target, kind="server", protocol="redirector", strict=strict)


def test_reference_server_passes_every_must_case(cases: list[Case]) -> None:
    result = _run(reference_command(["--idle-timeout", "2"]), cases, "reference", strict=True)
    bad = {r.case.id: (r.verdict, r.message) for r in result.results
           if r.verdict not in (Verdict.PASS, Verdict.INFORMATIONAL)}
    assert bad == {}
    musts = [r for r in result.results if r.case.severity is Severity.MUST]
    # a server that hashes every failure is not driven to 300 failures in the long run's
    # budget: the case says so (INFORMATIONAL "not reached"), it does not pass
    limited = {r.case.id for r in musts
               if r.verdict is Verdict.INFORMATIONAL and "not reached" in r.message}
    assert limited <= {"redir.server.long-failure-run"}
    assert musts and all(r.verdict is Verdict.PASS for r in musts if r.case.id not in limited)


def test_gallery_covers_every_rule() -> None:
    assert len(GALLERY) >= 10
    assert {spec.rule for spec in GALLERY.values()} == {f"R-S{i}" for i in range(1, 8)}


@pytest.mark.parametrize("name", sorted(GALLERY))
def test_faulty_server_is_caught(name: str, cases: list[Case]) -> None:
    spec = GALLERY[name]
    known = {c.id for c in cases}
    assert set(spec.catches) <= known, f"{name} names unknown cases"
    # only the cases it lists: each must catch it on its own, whatever ran before
    listed = [c for c in cases if c.id in spec.catches]
    result = _run(COMMANDS[name], listed, f"faulty:{name}", strict=True)
    verdicts = {r.case.id: r for r in result.results}
    for case_id in spec.catches:
        r = verdicts[case_id]
        assert r.verdict is Verdict.FAIL, f"{case_id} did not catch {name}: {r.verdict} {r.message}"


@pytest.mark.parametrize("name", sorted(CORRECT))
def test_correct_design_passes_every_case(name: str, cases: list[Case]) -> None:
    """A server that answers at the second newline (bytes written later are not part of
    the request) passes every case, strictly."""
    result = _run(fixture_command(name), cases, f"correct:{name}", strict=True)
    bad = {r.case.id: (r.verdict, r.message) for r in result.results
           if r.verdict not in (Verdict.PASS, Verdict.INFORMATIONAL)}
    assert bad == {}


def test_trailing_bytes_in_the_same_write_are_a_should(cases: list[Case]) -> None:
    """Granting a right request with more bytes in the same write is NON-STRICT, not FAIL:
    the password still had to be exact."""
    chosen = [c for c in cases if c.id == "redir.server.deny-extra-line"]
    result = _run(COMMANDS["ignores-trailing"], chosen, "faulty:ignores-trailing",
                  strict=False)
    (r,) = result.results
    assert r.case.severity is Severity.SHOULD
    assert r.verdict is Verdict.NON_STRICT, r.message


def test_stall_cases_exist_for_each_place(cases: list[Case]) -> None:
    ids = {c.id: c for c in cases}
    for place in ("silent", "mid-user", "mid-password"):
        case = ids[f"redir.server.deny-stalled-{place}"]
        assert case.rule == "R-S2" and case.severity is Severity.MUST
        assert f"grants-stall-{place}" in GALLERY
    assert ids["redir.server.stalled-mid-request-timeout"].rule == "R-S4"


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_a_documented_policy_is_reported_not_failed(name: str, cases: list[Case]) -> None:
    """A lock-out after many failures is the server's policy: the cases of its rule and
    endurance (whose wrong passwords must not lock the valid logins' user) do not FAIL,
    and the long failure run reports the refused login (INFORMATIONAL)."""
    spec = POLICIES[name]
    rule_cases = [c for c in cases if c.rule == spec.rule or c.id == "redir.server.endurance"]
    result = _run(fixture_command(name), rule_cases, f"policy:{name}", strict=True)
    verdicts = {r.case.id: r for r in result.results}
    bad = {i: (r.verdict, r.message) for i, r in verdicts.items()
           if r.verdict not in (Verdict.PASS, Verdict.INFORMATIONAL, Verdict.SKIPPED)}
    assert bad == {}
    for case_id in spec.catches:
        r = verdicts[case_id]
        assert r.verdict is Verdict.INFORMATIONAL, (case_id, r.verdict, r.message)
        assert "lock-out" in r.message


@pytest.mark.parametrize("name", sorted(NARROW_POLICIES))
def test_a_narrow_policy_fails_none_of_its_cases(name: str, cases: list[Case]) -> None:
    """A lock-out that a grant does not reset (N failures in T seconds): endurance sends
    its wrong passwords to an unknown user, so the valid logins are never locked out."""
    spec = NARROW_POLICIES[name]
    chosen = [c for c in cases if c.id in spec.catches]
    result = _run(fixture_command(name), chosen, f"policy:{name}", strict=True)
    verdicts = {r.case.id: (r.verdict, r.message) for r in result.results}
    assert set(verdicts) == set(spec.catches)
    assert all(v in (Verdict.PASS, Verdict.INFORMATIONAL) for v, _ in verdicts.values()), verdicts


def test_a_lookalike_that_is_another_given_user_is_not_sent(cases: list[Case]) -> None:
    """ALICE beside alice, with the same password: granting ALICE is right, not a look-alike."""
    chosen = [c for c in cases if c.id == "redir.server.lookalike-user"]
    creds = [("alice", "same-pw"), ("ALICE", "same-pw")]
    with LocalServer(reference_command(), creds, name="two-cases") as server:
        target = ServerTarget("two-cases", server.socket, "redirector",
                              [(u.encode(), p.encode()) for u, p in creds], timeout=3.0)
        result = run_target(chosen, target, kind="server", protocol="redirector", strict=True)
    (r,) = result.results
    assert r.verdict is Verdict.PASS, r.message


def test_the_failure_run_spares_the_only_login(cases: list[Case]) -> None:
    """With one login, a lock-out of it would fail every later case: the known user's
    stream is not run, and the case says so instead of passing silently. (A counter that
    wraps is still caught through the unknown user's stream.)"""
    chosen = [c for c in cases if c.id == "redir.server.long-failure-run"]
    creds = [REFERENCE_CREDENTIALS[0]]
    with LocalServer(fixture_command(sorted(POLICIES)[0]), creds, name="one-login") as server:
        target = ServerTarget("one-login", server.socket, "redirector",
                              [(u.encode(), p.encode()) for u, p in creds], timeout=3.0)
        result = run_target(chosen, target, kind="server", protocol="redirector", strict=True)
    (r,) = result.results
    assert r.verdict is Verdict.INFORMATIONAL, r.message
    assert "only login" in r.message and "lock-out" not in r.message


def test_an_fd_leak_needs_the_pid(cases: list[Case]) -> None:
    """Without the server's PID the endurance case cannot see descriptors: it says so."""
    chosen = [c for c in cases if c.id == "redir.server.endurance"]
    with LocalServer(COMMANDS["leaks-fd-per-denial"], REFERENCE_CREDENTIALS,
                     name="no-pid") as server:
        target = ServerTarget("no-pid", server.socket, "redirector", PAIRS, timeout=3.0)
        result = run_target(chosen, target, kind="server", protocol="redirector", strict=True)
    (r,) = result.results
    assert r.verdict is Verdict.PASS
    assert any("no --pid" in note for note in r.evidence.get("notes", []))


def test_a_flood_read_whole_then_closed_is_non_strict_without_the_pid(
        cases: list[Case]) -> None:
    """A server that took all 4 MiB, then closed at its idle deadline: only its memory tells
    whether it kept them (FAIL with the PID, test_faulty_server_is_caught); without the PID
    the case cannot tell, and says so."""
    chosen = [c for c in cases if c.id == "redir.server.field-limit"]
    with LocalServer(COMMANDS["unbounded-read-deadline"], REFERENCE_CREDENTIALS,
                     name="no-pid") as server:
        target = ServerTarget("no-pid", server.socket, "redirector", PAIRS, timeout=3.0)
        (r,) = run_target(chosen, target, kind="server", protocol="redirector").results
    assert r.verdict is Verdict.NON_STRICT and "no field limit" in r.message, r.message


def test_endurance_with_the_pid_catches_a_memory_leak(cases: list[Case]) -> None:
    """The fuzz-only server that keeps 16 MiB per connection: with its PID the endurance
    case stops the run early and FAILs on memory (the host is not exhausted)."""
    chosen = [c for c in cases if c.id == "redir.server.endurance"]
    path = gallery.fixtures_dir() / "fuzz_only_servers.py"

    def command(sock: Path, creds: Path) -> list[str]:
        return [sys.executable, str(path), "leaky-buffers", str(sock), str(creds),
                "--allow-uid", str(os.getuid())]

    result = _run(command, chosen, "fuzz-only:leaky-buffers", strict=True)
    (r,) = result.results
    assert r.verdict is Verdict.FAIL, r.message
    assert "memory" in r.message


@pytest.mark.parametrize(("grants", "verdict"), [
    ("exact-without-newline", Verdict.NON_STRICT),  # the password was exact: no gain
    ("user-line-alone", Verdict.FAIL),  # no password at all
    (None, Verdict.PASS),  # closes without a reply: no request was made
])
def test_a_missing_line_is_graded_by_what_it_gives_away(
        short_dir: Path, grants: str | None, verdict: Verdict, cases: list[Case]) -> None:
    import contextlib
    import socket
    import threading

    user, password = PAIRS[0]
    granting = {"exact-without-newline": user + b"\n" + password,
                "user-line-alone": user + b"\n"}.get(grants or "")
    path = short_dir / "s"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(8)
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:  # reads to EOF; a whole request is judged, else a close
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(3)
                data = b""
                with contextlib.suppress(OSError):
                    while chunk := conn.recv(4096):
                        data += chunk
                if data in (granting, user + b"\n" + password + b"\n"):
                    conn.sendall(b"0")
                elif data.count(b"\n") >= 2:
                    conn.sendall(b"1")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        case = next(c for c in cases if c.id == "redir.server.deny-missing-password-line")
        target = ServerTarget("t", path, "redirector", PAIRS, timeout=2.0)
        (r,) = run_target([case], target, kind="server", protocol="redirector").results
    finally:
        stop.set()
        thread.join(5)
        listener.close()
    assert r.verdict is verdict, r.message
