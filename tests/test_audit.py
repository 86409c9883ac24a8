"""``pamconform audit``: bad input is exit 2, no engine exit 3; on the shipped example
stacks it flags exactly the known fail-open states (lab)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

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


def test_no_engine_is_exit_3(tmp_path: Path) -> None:
    proc = _audit(str(EXAMPLES / "optional" / "sshd"), "--report", str(tmp_path / "r"),
                  env={"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"})
    assert proc.returncode == 3, proc.stderr
    assert "harness error" in proc.stderr


@pytest.mark.docker
@pytest.mark.parametrize("example", sorted(EXPECTED))
def test_examples_flag_exactly_the_fail_open_states(example: str, tmp_path: Path,
                                                    docker_client: object,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    extra, code, flagged = EXPECTED[example]
    report = tmp_path / "report"
    rc = main(["audit", str(EXAMPLES / example), *extra, "--report", str(report)])
    out = capsys.readouterr().out
    assert rc == code, out
    target = json.loads((report / "index.json").read_text())["targets"][0]
    assert target["kind"] == "stack"
    failed = [c["id"].removeprefix("audit.") for c in target["cases"] if c["verdict"] == "FAIL"]
    assert failed == flagged, out
    assert target["cases"][0]["id"] == "audit.grant"
    assert all(c["verdict"] == "PASS" for c in target["cases"] if c["id"] == "audit.grant")
    for state in flagged:
        assert f"FAIL-OPEN with the server {state}:" in out
        case = next(c for c in target["cases"] if c["id"] == f"audit.{state}")
        assert "PAM_SUCCESS was set by" in case["message"]
        assert case["evidence"]["trace"].startswith("authenticate: PAM_SUCCESS")
    assert "(differs)" not in out


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
    assert proc.returncode == 3, proc.stderr
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
    assert proc.returncode == 3, proc.stderr
    assert "pcSalt" not in proc.stdout + proc.stderr
    assert ("/etc/shadow: not a PAM configuration: 2 of 2 lines have no PAM type "
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
    assert "/etc/pam.d/sshd:1: illegal module type: auht" in p.shown_problems()


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
    assert "/etc/pam.d/sshd:1: unable to open config for loop" in p.shown_problems()
