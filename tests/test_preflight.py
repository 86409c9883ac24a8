"""Logins are checked before any case runs, and can be given without the command line.

A wrong password is one line and exit 2 (not a FAIL of every case); a password never
appears in that line; ``fuzz replay`` tells refused setup logins from a fixed bug.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pamconform.cli.main import REFERENCE_CREDENTIALS
from pamconform.core import resources
from pamconform.lab.localserver import LocalServer, reference_command

GOOD = "alice:alice-auth-pw"
WRONG_PW = "wr0ng-pw-Qz7"


@pytest.fixture(scope="module")
def reference() -> Iterator[LocalServer]:
    with LocalServer(reference_command(), REFERENCE_CREDENTIALS, name="reference") as server:
        yield server


def _run(*args: str, env: dict[str, str] | None = None,
         timeout: float = 120) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k != "PAMCONFORM_CREDENTIALS"}
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "pamconform.cli", *args], capture_output=True,
                          text=True, timeout=timeout, check=False, env=full)


def _one_line_exit_2(proc: subprocess.CompletedProcess[str], needle: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-2000:], proc.stderr)
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert needle in proc.stderr, proc.stderr
    assert WRONG_PW not in proc.stderr


def _private_file(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    os.chmod(path, mode)
    return path


# ------------------------------------------------------------------ wrong logins: exit 2


@pytest.mark.parametrize("command", [["server"], ["fuzz", "server"], ["bench"]])
def test_wrong_password_is_a_usage_error(reference: LocalServer, command: list[str],
                                         tmp_path: Path) -> None:
    extra = [] if command == ["bench"] else ["--report", str(tmp_path / "r")]
    proc = _run(*command, str(reference.socket), "--credentials", f"alice:{WRONG_PW}",
                "--seconds" if command != ["server"] else "--quiet",
                *(["1"] if command != ["server"] else []), *extra)
    _one_line_exit_2(proc, "the server refused alice's login (reply b'1'): check --credentials")
    assert not (tmp_path / "r").exists()


def test_each_login_is_checked(reference: LocalServer, tmp_path: Path) -> None:
    proc = _run("server", str(reference.socket), "--credentials", GOOD, "--credentials",
                f"bob:{WRONG_PW}", "--report", str(tmp_path / "r"))
    _one_line_exit_2(proc, "refused bob's login")


def test_right_password_runs(reference: LocalServer, tmp_path: Path) -> None:
    proc = _run("server", str(reference.socket), "--credentials", GOOD, "--cases",
                "redir.server.polarity*", "--report", str(tmp_path / "r"), "--quiet")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert (tmp_path / "r" / "index.json").exists()


def _token_command(directory: Path, *, mangle: bool) -> str:
    command = shlex.join([sys.executable, str(resources.servers_dir() / "token_server.py"),
                          "--socket-dir", str(directory), "--timeout", "10", "--allow-uid",
                          str(os.getuid())])
    if mangle:  # the token printed is not the one the server waits for
        command += r" | sed -E 's/(TTK[0-9]+:[0-9]+:)..../\1AAAA/'"
    return command


@pytest.mark.parametrize("command", [["server"], ["fuzz", "server", "--seconds", "1"]])
def test_refused_fresh_token_is_a_usage_error(short_dir: Path, tmp_path: Path,
                                              command: list[str]) -> None:
    proc = _run(*command, str(short_dir), "--protocol", "transient-token", "--token-command",
                _token_command(short_dir, mangle=True), "--report", str(tmp_path / "r"))
    _one_line_exit_2(proc, "the server refused a fresh token from --token-command "
                     "(reply b'FAIL\\n\\x00')")
    assert "AAAA" not in proc.stderr


def test_granted_token_runs_and_its_cases_get_fresh_tokens(short_dir: Path,
                                                            tmp_path: Path) -> None:
    proc = _run("server", str(short_dir), "--protocol", "transient-token", "--token-command",
                _token_command(short_dir, mangle=False), "--cases",
                "token.server.accept-exact-token", "--report", str(tmp_path / "r"), "--quiet")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    data = json.loads((tmp_path / "r" / "index.json").read_text())
    assert [c["verdict"] for c in data["targets"][0]["cases"]] == ["PASS"]


# ------------------------------------------------------- --credentials-file and the variable


def test_credentials_file(reference: LocalServer, tmp_path: Path) -> None:
    creds = _private_file(tmp_path / "creds", f"# CI logins\n\n{GOOD}\r\nbob:bob-auth-pw\n")
    proc = _run("server", str(reference.socket), "--credentials-file", str(creds), "--cases",
                "redir.server.polarity*", "--report", str(tmp_path / "r"), "--quiet")
    assert proc.returncode == 0, proc.stderr + proc.stdout


def test_credentials_file_with_a_wrong_password(reference: LocalServer, tmp_path: Path) -> None:
    creds = _private_file(tmp_path / "creds", f"alice:{WRONG_PW}\n")
    proc = _run("bench", str(reference.socket), "--credentials-file", str(creds))
    _one_line_exit_2(proc, "refused alice's login")


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda p: _private_file(p, GOOD, 0o640), "readable or writable by group or others"),
        (lambda p: _private_file(p, GOOD, 0o602), "readable or writable by group or others"),
        (lambda p: (os.symlink(_private_file(p.with_name("real"), GOOD), p), p)[1],
         "is a symlink"),
        (lambda p: (os.mkfifo(p, 0o600), p)[1], "not a regular file"),
        (lambda p: (p.mkdir(mode=0o700), p)[1], "not a regular file"),
        (lambda p: p, "No such file"),
        (lambda p: _private_file(p, "# only a comment\n"), "no USER:PASSWORD line"),
        (lambda p: _private_file(p, WRONG_PW + "\n"), "line 1: expected USER:PASSWORD"),
    ],
)
def test_credentials_file_refused(make, needle: str, tmp_path: Path, in_process_cli) -> None:  # type: ignore[no-untyped-def]
    path = make(tmp_path / "creds")
    proc = in_process_cli("server", "/tmp/pc-no-such-socket", "--credentials-file", str(path))
    _one_line_exit_2(proc, needle)


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_credentials_file_of_another_user_refused(tmp_path: Path) -> None:
    path = _private_file(tmp_path / "creds", GOOD)
    os.chown(path, 65534, 65534)
    proc = _run("server", "/tmp/pc-no-such-socket", "--credentials-file", str(path))
    _one_line_exit_2(proc, "not by you")


def test_environment_variable(reference: LocalServer, tmp_path: Path) -> None:
    env = {"PAMCONFORM_CREDENTIALS": f"{GOOD}\nbob:bob-auth-pw"}
    proc = _run("server", str(reference.socket), "--cases", "redir.server.polarity*",
                "--report", str(tmp_path / "r"), "--quiet", env=env)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    bad = _run("server", str(reference.socket), "--report", str(tmp_path / "r2"),
               env={"PAMCONFORM_CREDENTIALS": f"{GOOD}\nbob:{WRONG_PW}\n"})
    _one_line_exit_2(bad, "refused bob's login")


def test_command_line_logins_win_over_the_variable(reference: LocalServer,
                                                   tmp_path: Path) -> None:
    env = {"PAMCONFORM_CREDENTIALS": f"alice:{WRONG_PW}"}
    proc = _run("server", str(reference.socket), "--credentials", GOOD, "--cases",
                "redir.server.polarity*", "--report", str(tmp_path / "r"), "--quiet", env=env)
    assert proc.returncode == 0, proc.stderr + proc.stdout


def test_no_login_anywhere() -> None:
    proc = _run("server", "/tmp/pc-no-such-socket")
    _one_line_exit_2(proc, "--credentials-file FILE, $PAMCONFORM_CREDENTIALS")


# ------------------------------------------------------------------------- fuzz replay


def _finding(path: Path, password: str) -> Path:
    login = f"alice\n{password}\n".encode()
    path.write_text(json.dumps({
        "protocol": "redirector", "kind": "grant", "chunks_hex": [b"alice\nx\n".hex()],
        "pauses": [], "shutdown": True, "setup_hex": [login.hex()], "valid_hex": [login.hex()],
        "expected": "a denial", "observed": "b'0'", "seed": 1, "iteration": 3,
    }))
    return path


def test_replay_with_refused_setup_logins_is_exit_2(reference: LocalServer,
                                                    tmp_path: Path) -> None:
    proc = _run("fuzz", "replay", str(_finding(tmp_path / "f.json", WRONG_PW)),
                str(reference.socket))
    _one_line_exit_2(proc, "the setup logins were refused")
    assert "no longer reproduces" not in proc.stdout


def test_replay_with_valid_logins_no_longer_reproduces(reference: LocalServer,
                                                       tmp_path: Path) -> None:
    proc = _run("fuzz", "replay", str(_finding(tmp_path / "f.json", "alice-auth-pw")),
                str(reference.socket))
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "no longer reproduces" in proc.stdout


# ------------------------------------------------------- a server that echoes the request


ECHOED_PW = "Zq7-Kestrel-4411"


def _echo(conn: socket.socket) -> None:
    """Denies every request with a reply that repeats it (password and all)."""
    data = b""
    while data.count(b"\n") < 2 and (chunk := conn.recv(512)):
        data += chunk
    conn.sendall(b"1 " + data)


@pytest.mark.parametrize("command", [["server"], ["fuzz", "replay"]])
def test_a_refused_login_echoed_back_stays_secret(scripted, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                  command: list[str]) -> None:
    """The error line quotes the server's reply: redacted as data, no piece of the password
    (its first half included) in clear."""
    finding = []
    if command == ["fuzz", "replay"]:
        finding = [str(tmp_path / "f.json")]
        (tmp_path / "f.json").write_text(json.dumps({
            "protocol": "redirector", "kind": "grant", "chunks_hex": [b"bob\nx\n".hex()],
            "pauses": [], "shutdown": True,
            "setup_hex": [f"bob\n{ECHOED_PW}\n".encode().hex()],
            "valid_hex": [], "expected": "a denial", "observed": "b'0'", "seed": 1,
            "iteration": 3}))
    proc = _run(*command, *finding, str(scripted(_echo).path), "--credentials", f"bob:{ECHOED_PW}",
                *(["--quiet", "--report", str(tmp_path / "r")] if command == ["server"] else []))
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-2000:], proc.stderr)
    assert "Traceback" not in proc.stderr and "refused bob's login" in proc.stderr
    assert "password of bob, 16 bytes" in proc.stderr, proc.stderr
    for piece in ("Zq7-Kest", "rel-4411", ECHOED_PW):
        assert piece not in proc.stderr + proc.stdout, proc.stderr


def _waits_for_end_of_input(conn: socket.socket) -> None:
    """Answers only once the client ends its side, which the module never does."""
    data = b""
    while chunk := conn.recv(512):
        data += chunk
    conn.sendall(b"0")


def test_a_server_that_waits_for_the_end_of_input_is_not_blamed_on_the_password(
        scripted, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server = scripted(_waits_for_end_of_input)
    proc = _run("server", str(server.path), "--credentials", GOOD, "--timeout", "0.5",
                "--quiet", "--report", str(tmp_path / "r"))
    _one_line_exit_2(proc, "does the server wait for the client's end of input?")
    assert "check --credentials" not in proc.stderr
