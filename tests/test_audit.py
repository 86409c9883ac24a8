"""``pamconform audit``: bad input is exit 2; offline (the default: the model, no engine,
no root) and with ``--verify`` (real libpam in the lab; no engine: exit 3) it flags
exactly the known fail-open states of the shipped example stacks."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rootless_user import NOBODY, Nobody, can_drop, nobody_workdir

from pamconform.cli.main import main
from pamconform.model import audit

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "stacks"
ALL_BUT_GRANT = ["deny", "down", "hung", "garbage"]

#: example -> (extra arguments, exit code, states flagged FAIL-OPEN)
EXPECTED = {
    "safe/sshd": ([], 0, []),
    "sufficient-after-success/sshd": ([], 1, ALL_BUT_GRANT),
    "all-ignore/sshd": ([], 1, ["down", "hung"]),
    "all-ignore-unprimed/sshd": ([], 0, []),
    "optional/sshd": ([], 1, ALL_BUT_GRANT),
    "single-file/pam.conf": (["--service", "sshd"], 1, ALL_BUT_GRANT),
}
#: the offline audit also knows pam_ldap's stacks (the lab runs other daemon states)
OFFLINE_EXPECTED = {
    **EXPECTED,
    "ldap/sshd": ([], 0, []),
    "ldap/common-auth-outage": ([], 1, ["down", "hung", "garbage"]),
    # pam_unix vouches for the account and jumps over pam_ldap, in every state: the
    # server's refusal opens nothing (docs/audit.md#account)
    "ldap/common-account": ([], 0, []),
}


def _audit(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pamconform.cli", "audit", *args],
                          capture_output=True, text=True, timeout=300, check=False, cwd=ROOT,
                          env={**os.environ, **(env or {})})


@pytest.mark.parametrize(("content", "args", "message"), [
    (None, [], "no such file"),
    ("auth required pam_permit.so\n", [], "no socket module line"),
    ("auth required pam_redirector.so /s\n", ["--module-line", "7"], "--module-line 7"),
    ("auth include\nauth required pam_redirector.so /s\n", [], "would crash"),
    ("auth required pam_redirector.so /s \\", [], "cannot use this configuration"),
    ("auth required pam_redirector.so /s\n", ["--stand-in", "maybe"], "--stand-in"),
])
def test_bad_input_is_exit_2(tmp_path: Path, content: str | None, args: list[str],
                             message: str) -> None:
    stack = tmp_path / "sshd"
    if content is not None:
        stack.write_text(content)
    proc = _audit(str(stack), *args, "--report", str(tmp_path / "r"))
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_pam_conf_needs_a_service(tmp_path: Path) -> None:
    proc = _audit(str(EXAMPLES / "single-file" / "pam.conf"))
    assert proc.returncode == 2 and "--service" in proc.stderr


def test_verify_without_an_engine_is_exit_3(tmp_path: Path) -> None:
    proc = _audit(str(EXAMPLES / "optional" / "sshd"), "--verify", "--report",
                  str(tmp_path / "r"), env={"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"})
    assert proc.returncode == 3, proc.stderr
    assert "harness error" in proc.stderr


def _flagged(report: Path, prefix: str = "audit.") -> list[str]:
    target = json.loads((report / "index.json").read_text())["targets"][0]
    assert target["kind"] == "stack"
    return [c["id"].removeprefix(prefix) for c in target["cases"]
            if c["verdict"] == "FAIL" and c["id"].count(".") == prefix.count(".")]


@pytest.mark.parametrize("example", sorted(OFFLINE_EXPECTED))
def test_offline_flags_exactly_the_fail_open_states(example: str, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The default needs no engine: DOCKER_HOST points nowhere."""
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    extra, code, flagged = OFFLINE_EXPECTED[example]
    report = tmp_path / "report"
    rc = main(["audit", str(EXAMPLES / example), *extra, "--report", str(report)])
    out = capsys.readouterr().out
    assert rc == code, out
    assert _flagged(report) == flagged, out
    target = json.loads((report / "index.json").read_text())["targets"][0]
    assert target["mode"] == "model"
    assert [c["id"] for c in target["cases"]] == [
        f"audit.{s}" for s in ("grant", "deny", "down", "hung", "garbage")]
    assert target["cases"][0]["verdict"] == "PASS"
    lines = [line for line in out.splitlines() if line.startswith("FAIL-OPEN with")]
    assert [line.split()[4] for line in lines] == flagged  # one line per fail-open state
    for line in lines:
        # the user's file and line, never the container's path
        assert f"{EXAMPLES / example.split('/')[0]}/" in line and "/etc/pam.d" not in line
        assert "PAM_SUCCESS was set by" in line
    for state in flagged:
        case = next(c for c in target["cases"] if c["id"] == f"audit.{state}")
        assert case["evidence"]["trace"].startswith("authenticate: PAM_SUCCESS")


def test_the_other_modules_results_that_grant_are_named(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    rc = main(["audit", str(EXAMPLES / "optional" / "sshd"), "--report", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 1
    assert (f"FAIL-OPEN with the server deny (socket module PAM_AUTH_ERR): grants when "
            f"pam_succeed_if.so ({EXAMPLES}/optional/sshd:6) returns PAM_SUCCESS;") in out


@pytest.mark.parametrize(("stack", "fail_open"), [
    # a right local password is a valid login, not a fail-open: pam_unix may not succeed
    # for the attacker ...
    ("auth sufficient pam_unix.so\nauth required pam_redirector.so /s\n", []),
    # ... but what a condition module returns is the attacker's to choose
    ("auth sufficient pam_succeed_if.so uid >= 1000\nauth required pam_redirector.so /s\n",
     ALL_BUT_GRANT),
    # pam_env never decides pam_authenticate (PAM_IGNORE): nothing primes this stack
    ("auth [success=done default=ignore] pam_redirector.so /s\nauth required pam_env.so\n",
     []),
    ("auth [success=done default=ignore] pam_redirector.so /s\nauth required pam_access.so\n",
     ALL_BUT_GRANT),
])
def test_which_modules_may_grant(tmp_path: Path, stack: str, fail_open: list[str],
                                 capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "svc").write_text(stack)
    rc = main(["audit", str(tmp_path / "svc"), "--report", str(tmp_path / "r")])
    assert _flagged(tmp_path / "r") == fail_open, capsys.readouterr().out
    assert rc == (1 if fail_open else 0)


@pytest.mark.parametrize(("stack", "fail_open"), [
    # Debian's common-account: pam_unix's success jumps over the socket module whatever
    # the server says; pam_acct_mgmt gives no login without authentication
    ("account [success=2 default=ignore] pam_unix.so\n"
     "account [success=1 default=ignore] pam_redirector.so /s\n"
     "account requisite pam_deny.so\naccount required pam_permit.so\n", []),
    # the server's refusal asked and disregarded is a fail-open in the account phase too
    ("account optional pam_redirector.so /s\naccount required pam_unix.so\n", ALL_BUT_GRANT),
    ("account [default=ignore] pam_redirector.so /s\naccount required pam_permit.so\n",
     ALL_BUT_GRANT),
    # two paths reach pam_succeed_if alike, one of them after asking the server: the one
    # that asked must be explored on its own (it grants after the server said no)
    ("account [success=1 default=ignore] pam_localuser.so\n"
     "account sufficient pam_redirector.so /s\n"
     "account [success=1 default=ignore] pam_succeed_if.so user ingroup banned\n"
     "account sufficient pam_permit.so\naccount required pam_deny.so\n", ALL_BUT_GRANT),
])
def test_account_phase_fails_open_only_where_the_server_was_asked(
        tmp_path: Path, stack: str, fail_open: list[str],
        capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "svc").write_text(stack)
    rc = main(["audit", str(tmp_path / "svc"), "--report", str(tmp_path / "r")])
    out = capsys.readouterr().out
    assert _flagged(tmp_path / "r") == fail_open, out
    assert rc == (1 if fail_open else 0)
    if not fail_open:
        assert "without asking the socket module" in out


@pytest.mark.parametrize(("service", "fail_open"), [
    ("su", []),  # run as its caller: pam_rootok grants root only, who needs no login
    ("sshd", ALL_BUT_GRANT),  # sshd runs as root: pam_rootok would grant anyone
])
def test_pam_rootok_grants_only_where_its_caller_is_root(
        tmp_path: Path, service: str, fail_open: list[str],
        capsys: pytest.CaptureFixture[str]) -> None:
    """Debian's su stack starts with ``auth sufficient pam_rootok.so``: no fail-open."""
    (tmp_path / service).write_text("auth sufficient pam_rootok.so\n"
                                    "auth required pam_redirector.so /s\n"
                                    "account required pam_permit.so\n")
    rc = main(["audit", str(tmp_path / service), "--report", str(tmp_path / "r")])
    assert _flagged(tmp_path / "r") == fail_open, capsys.readouterr().out
    assert rc == (1 if fail_open else 0)


def test_a_fail_open_wins_over_an_undecided_state(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Exit 1 (a fail-open found) is never hidden behind exit 3 (another state undecided)."""
    from pamconform.model import audit_offline

    monkeypatch.setattr(audit_offline, "audit", functools.partial(audit_offline.audit,
                                                                  limit=2))
    (tmp_path / "svc").write_text(
        "auth optional pam_succeed_if.so uid > 1\nauth optional pam_access.so\n"
        "auth [success=ok authinfo_unavail=ignore default=die] pam_redirector.so /s\n"
        "auth required pam_permit.so\n")
    rc = main(["audit", str(tmp_path / "svc"), "--report", str(tmp_path / "r")])
    out = capsys.readouterr().out
    assert "ERROR: with the server deny" in out and "FAIL-OPEN with the server down" in out
    assert rc == 1


def test_an_include_cycle_names_the_user_s_files(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("auth include b\nauth required pam_redirector.so /s\n")
    (tmp_path / "b").write_text("auth include a\n")
    proc = _audit(str(tmp_path / "a"), "--report", str(tmp_path / "r"), env=NO_ENGINE)
    assert proc.returncode == 2, proc.stderr
    assert f"{tmp_path}/b:1: include cycle through {tmp_path}/a:" in proc.stderr
    assert "/etc/pam.d" not in proc.stderr


def test_a_stack_that_never_grants_is_reported(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "svc").write_text("auth required pam_redirector.so /s\n"
                                  "auth required pam_deny.so\n")
    assert main(["audit", str(tmp_path / "svc"), "--report", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "warning: the stack does not grant in any combination even with the server " \
        "granting (PAM_AUTH_ERR)" in out
    assert main(["audit", str(tmp_path / "svc"), "--strict", "--report",
                 str(tmp_path / "r2")]) == 1
    assert "NEVER GRANTS: the stack does not grant" in capsys.readouterr().out
    assert _flagged(tmp_path / "r2") == ["grant"]


def test_a_missing_include_names_the_missing_file(tmp_path: Path) -> None:
    for text, line in (("auth required pam_redirector.so /s\nauth include common-auth\n", 2),
                       ("@include common-auth\nauth required pam_redirector.so /s\n", 1)):
        (tmp_path / "sshd").write_text(text)
        proc = _audit(str(tmp_path / "sshd"), "--report", str(tmp_path / "r"), env=NO_ENGINE)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
        assert (f"{tmp_path}/sshd:{line}: include common-auth not found (looked in {tmp_path})"
                in proc.stderr), proc.stderr


def test_verify_reports_a_disagreement_as_a_harness_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Without an engine: a lab run whose codes the model cannot explain is exit 3."""
    from pamconform.cli import audit as audit_cli
    from pamconform.model import codes
    from pamconform.model.modules import STATE_CODES

    def fake_lab(args: object, plan: audit.Plan, *_rest: object) -> audit.AuditResult:
        states = []
        for state, code in STATE_CODES.items():
            # pam_env returning PAM_SUCCESS (the model says it never decides), and libpam
            # disagreeing with what the model makes of that
            probe = {audit.line_key(h): codes.SUCCESS for h in plan.probes}
            s = audit.judge(plan, plan.files, state, code, {}, probe)
            s.result = "PAM_AUTH_ERR"
            states.append(s)
        return audit.AuditResult(plan, states)

    monkeypatch.setattr(audit_cli, "_verify", fake_lab)
    rc = main(["audit", str(EXAMPLES / "all-ignore-unprimed" / "sshd"), "--verify",
               "--report", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 3, out
    assert ("ERROR (harness): model and libpam disagree: server down: pam_env.so "
            f"({EXAMPLES}/all-ignore-unprimed/sshd:6) returns PAM_SUCCESS in the lab, a code "
            "the model never tries for it (PAM_IGNORE)") in out
    assert "pam_systemd_home.so" in out and "(any code but PAM_SUCCESS)" in out
    assert "ERROR (harness): model and libpam disagree: server grant: libpam returns " \
        "PAM_AUTH_ERR, the model fed libpam's module codes PAM_SUCCESS" in out
    cases = json.loads((tmp_path / "index.json").read_text())["targets"][0]["cases"]
    verify = {c["id"]: c["verdict"] for c in cases if c["id"].startswith("audit.verify.")}
    # with the server deny the socket line dies first: libpam and the model agree
    assert verify == {"audit.verify.grant": "ERROR", "audit.verify.deny": "PASS",
                      "audit.verify.down": "ERROR", "audit.verify.hung": "ERROR",
                      "audit.verify.garbage": "PASS"}


@pytest.mark.skipif(not can_drop(), reason="needs root to become nobody (setpriv)")
def test_offline_audit_as_an_unprivileged_user_without_docker() -> None:
    with nobody_workdir() as workdir:
        nobody = Nobody(workdir)  # DOCKER_HOST points at a socket that does not exist
        for example, (extra, code, flagged) in sorted(OFFLINE_EXPECTED.items()):
            proc, report = nobody.start("audit", str(EXAMPLES / example), *extra)
            out = proc.communicate(timeout=120)[0].decode(errors="replace")
            assert proc.returncode == code, (example, out)
            assert [line.split()[4] for line in out.splitlines()
                    if line.startswith("FAIL-OPEN with")] == flagged, example
            assert _flagged(report) == flagged
            assert (report / "index.json").stat().st_uid == NOBODY


@pytest.mark.docker
@pytest.mark.parametrize("example", sorted(EXPECTED))
def test_verify_agrees_with_libpam_on_the_examples(example: str, tmp_path: Path,
                                                   docker_client: object,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """``--verify``: real libpam in the lab, every state, no disagreement with the model."""
    extra, code, flagged = EXPECTED[example]
    report = tmp_path / "report"
    rc = main(["audit", str(EXAMPLES / example), *extra, "--verify", "--report", str(report)])
    out = capsys.readouterr().out
    assert rc == code, out
    assert _flagged(report) == flagged, out
    target = json.loads((report / "index.json").read_text())["targets"][0]
    assert target["mode"] == "verify"
    lab = {c["id"].removeprefix("audit.verify."): c for c in target["cases"]
           if c["id"].startswith("audit.verify.")}
    assert list(lab) == ["grant", "deny", "down", "hung", "garbage"]
    assert all(c["verdict"] == "PASS" for c in lab.values()), out
    # libpam grants in exactly the flagged states of this lab's context
    granted = [s for s, c in lab.items() if c["evidence"]["libpam"]["result"] == "PAM_SUCCESS"]
    assert granted == ["grant", *flagged], out
    assert "ERROR (harness)" not in out and "(differs)" not in out


# ---- the audit reads only the tree it was given (no engine needed: exit 3 at the lab) ----
SECRET = "root:$6$pcSalt$NotAPamLineButAHash:19000:0:99999:7:::"
NO_ENGINE = {"DOCKER_HOST": "unix:///nonexistent/pc-no-docker.sock"}


def _shadow(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{SECRET}\nbob:$6$pcSalt$BobsHash:19000:0:99999:7:::\n")
    return path


def _stack(directory: Path, include: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    stack = directory / "sshd"
    stack.write_text(f"auth include {include}\nauth required pam_redirector.so /s\n")
    return stack


@pytest.mark.parametrize("how", ["absolute", "dotdot", "symlink"])
def test_includes_never_read_a_file_outside_the_tree(tmp_path: Path, how: str) -> None:
    host_file = _shadow(tmp_path / "elsewhere" / "shadow")
    tree = tmp_path / "tree"
    if how == "absolute":
        stack = _stack(tree, str(host_file))
    elif how == "dotdot":
        stack = _stack(tree, "../" * 12 + str(host_file).lstrip("/"))
    else:
        stack = _stack(tree, "common-auth")
        (tree / "common-auth").symlink_to(host_file)
    p = audit.plan(stack)
    assert list(p.files) == ["/etc/pam.d/sshd"]
    assert any("unable to open config" in line for line in p.shown_problems())
    proc = _audit(str(stack), "--report", str(tmp_path / "r"), env=NO_ENGINE)
    assert proc.returncode == 2, proc.stderr  # an include the tree lacks
    assert f"{stack}:1: include " in proc.stderr and " not found (looked in " in proc.stderr
    assert "pcSalt" not in proc.stdout + proc.stderr


def test_absolute_includes_resolve_inside_the_root(tmp_path: Path) -> None:
    tree = tmp_path / "target"
    (tree / "opt" / "pam").mkdir(parents=True)
    (tree / "opt" / "pam" / "extra").write_text("auth optional pam_permit.so\n")
    (tree / "etc" / "pam.d").mkdir(parents=True)
    (tree / "etc" / "pam.d" / "common").symlink_to("/opt/pam/extra")  # the target's path
    stack = tree / "etc" / "pam.d" / "sshd"
    stack.write_text("auth include /opt/pam/extra\nauth include common\n"
                     "auth required pam_redirector.so /s\n")
    p = audit.plan(stack, root=tree)
    assert p.files["/opt/pam/extra"] == b"auth optional pam_permit.so\n"
    assert p.files["/etc/pam.d/common"] == b"auth optional pam_permit.so\n"
    assert [h.module for h in p.config.chain("auth")] == [
        "pam_permit.so", "pam_permit.so", "pam_redirector.so"]


def test_lines_of_a_file_that_is_not_pam_are_never_shown(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    _shadow(tree / "etc" / "shadow")
    stack = _stack(tree, "/etc/shadow")
    p = audit.plan(stack)
    assert SECRET.encode() not in b"".join(p.files.values())
    assert p.files["/etc/shadow"].split(b"\n")[:2] == [b"NOT_A_PAM_LINE"] * 2
    # libpam reads the placeholder as it would the line: an illegal type that fails
    assert [h.kind for h in p.config.chain("auth")][:2] == ["must_fail", "must_fail"]
    proc = _audit(str(stack), "--report", str(tmp_path / "r"), env=NO_ENGINE)
    assert proc.returncode == 0, proc.stderr  # the placeholder fails: nothing grants
    assert "pcSalt" not in proc.stdout + proc.stderr
    assert "pcSalt" not in "".join(f.read_text() for f in (tmp_path / "r").iterdir()
                                   if f.is_file())
    assert (f"{tree}/etc/shadow: not a PAM configuration: 2 of 2 lines have no PAM type "
            "(first at line 1); not shown") in proc.stdout


def test_the_stack_itself_when_not_pam_is_not_echoed(tmp_path: Path) -> None:
    shadow = _shadow(tmp_path / "shadow")
    proc = _audit(str(shadow), "--module-line", "1", "--report", str(tmp_path / "r"))
    assert proc.returncode == 2 and "pcSalt" not in proc.stdout + proc.stderr


def test_typos_in_a_pam_file_are_still_shown(tmp_path: Path) -> None:
    stack = tmp_path / "sshd"
    stack.write_text("auht required pam_unix.so\nauth required pam_redirector.so /s\n"
                     "account required pam_permit.so\n")
    p = audit.plan(stack)
    assert f"{stack}:1: illegal module type: auht" in p.shown_problems()


@pytest.mark.parametrize("kind", ["directory", "huge", "fifo"])
def test_directory_huge_or_special_file_is_one_line_exit_2(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "sshd"
    if kind == "directory":
        target.mkdir()
        message = "is a directory"
    elif kind == "huge":
        target.write_text("auth required pam_redirector.so /s\n" + "#" * (2 << 20) + "\n")
        message = "larger than 1 MiB"
    else:
        os.mkfifo(target)
        message = "not a regular file"
    proc = _audit(str(target), "--report", str(tmp_path / "r"), env=NO_ENGINE)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and message in proc.stderr, proc.stderr


def test_a_huge_include_is_exit_2(tmp_path: Path) -> None:
    stack = _stack(tmp_path, "big")
    (tmp_path / "big").write_text("auth optional pam_permit.so\n" + "#" * (2 << 20) + "\n")
    proc = _audit(str(stack), "--report", str(tmp_path / "r"), env=NO_ENGINE)
    assert proc.returncode == 2, proc.stderr
    assert "/etc/pam.d/big: larger than 1 MiB" in proc.stderr


def test_a_symlink_loop_in_the_tree_is_an_include_that_fails(tmp_path: Path) -> None:
    stack = _stack(tmp_path, "loop")
    (tmp_path / "loop").symlink_to("loop")
    p = audit.plan(stack)
    assert f"{stack}:1: unable to open config for loop" in p.shown_problems()


def test_includes_nested_beyond_the_models_depth_are_one_line_exit_2(
        tmp_path: Path, in_process_cli) -> None:  # type: ignore[no-untyped-def]
    """libpam follows any depth; the model refuses one it cannot follow (it used to end in a
    RecursionError, exit 3) rather than evaluate it otherwise."""
    for i in range(400):
        (tmp_path / f"f{i}").write_text(f"@include f{i + 1}\n")
    (tmp_path / "f400").write_text("auth required pam_permit.so\n")
    (tmp_path / "sshd").write_text("@include f0\n")
    proc = in_process_cli("audit", str(tmp_path / "sshd"))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "includes nested more than" in proc.stderr
