"""CLI contract: bad input is one clear line and exit 2, never a traceback."""

import socket
import subprocess
import sys
from typing import Any

import pytest

from pamconform.cli.main import main
from pamconform.core.credentials import parse_credentials
from pamconform.core.errors import UsageError


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pamconform.cli", *args],
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["server", "/tmp/pc-no-such-socket", "--credentials", "a:bbbb"], "no such socket"),
        (["server", "/etc/passwd", "--credentials", "a:bbbb"], "not a socket"),
        (["server", "/tmp", "--credentials", "nocolon"], "expected USER:PASSWORD"),
        (["server", "/tmp"], "at least one valid login"),
        (["server", "--credentials", "a:bbbb"], "SOCKET argument is required"),
        (["server", "/tmp/x", "--protocol", "smtp"], "invalid choice"),
        (["server", "--list", "--cases", "nothing-matches-*"], "no case matches"),
        (["nonsense"], "invalid choice"),
    ],
)
def test_bad_input_is_one_line_exit_2(args: list[str], needle: str) -> None:
    proc = _run(*args)
    assert proc.returncode == 2, proc.stderr
    assert needle in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_nothing_listening(short_dir) -> None:
    path = short_dir / "dead"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))
    s.close()  # bound, never listening: connect is refused
    proc = _run("server", str(path), "--credentials", "a:bbbb")
    assert proc.returncode == 2
    assert "nothing is listening" in proc.stderr


def test_list_shows_every_rule(capsys) -> None:
    assert main(["server", "--list"]) == 0
    out = capsys.readouterr().out
    for rule in ("R-S1", "R-S2", "R-S3", "R-S4", "R-S5", "R-S6", "R-S7"):
        assert f" {rule} " in out
    assert "redir.server.polarity" in out


def test_credentials_keep_colons_in_passwords() -> None:
    assert parse_credentials(["al:pa:ss"]) == [(b"al", b"pa:ss")]
    with pytest.raises(UsageError):
        parse_credentials([":x"])


def test_module_without_engine_is_exit_3(tmp_path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pamconform.cli", "module", str(tmp_path)],
        capture_output=True, text=True, timeout=60, check=False,
        env={"PATH": "/usr/bin:/bin", "DOCKER_HOST": "unix:///tmp/pc-no-engine.sock",
             "HOME": str(tmp_path)},
    )
    assert proc.returncode == 3, proc.stderr
    assert "ensure-engine.sh" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["module", "/nonexistent-dir"], "not a directory"),
        (["module", "/tmp", "--so", "lib/x.so"], "file name of the module"),
        (["module", "/tmp", "--args", "timeout=3"], "{socket}"),
    ],
)
def test_module_bad_input(args: list[str], needle: str) -> None:
    proc = _run(*args)
    assert proc.returncode == 2 and needle in proc.stderr, proc.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["server", "--protocol", "transient-token"], "exactly one of --token-command"),
        (["server", "--protocol", "transient-token", "--token", "TTK1:2:abc"], "--token"),
        (["server", "/tmp", "--token", "x", "--credentials", "a:bbbb"], "need --protocol"),
        (["server", "--protocol", "transient-token", "--token-command", "true"],
         "--token-command"),
    ],
)
def test_token_protocol_bad_input(args: list[str], needle: str) -> None:
    proc = _run(*args)
    assert proc.returncode == 2, proc.stderr
    assert needle in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("args", [
    ["--token", "token: TTK0:99999:ZvGpYyBawL0ZXo/HjdYm/qBc0c/UE8Ds"],
    ["--token", "TTK0:99999999999:ZvGpYyBawL0ZXo/HjdYm/qBc0c/UE8Ds"],
    ["--token-command", "echo TTK0:1:ZvGpYyBawL0ZXo/HjdYm/qBc0c/UE8Dsx"],
])
def test_a_token_refused_is_not_echoed(args: list[str]) -> None:
    """A near-token is a secret all the same: the error says what is wrong without it."""
    proc = _run("server", "--protocol", "transient-token", *args)
    assert proc.returncode == 2 and "characters hidden" in proc.stderr, proc.stderr
    assert "ZvGpYyBawL0ZXo" not in proc.stdout + proc.stderr


def test_a_token_printed_on_stderr_is_not_echoed() -> None:
    """The command's stderr tail explains a failed mint: a token in it stays hidden."""
    proc = _run("server", "--protocol", "transient-token", "--token-command",
                "echo TTK0:1:ZvGpYyBawL0ZXo/HjdYm/qBc0c/UE8Ds >&2")
    assert proc.returncode == 2 and "characters hidden" in proc.stderr, proc.stderr
    assert "ZvGpYyBawL0ZXo" not in proc.stdout + proc.stderr


def test_run_can_select_the_stack_suite_alone(in_process_cli: Any) -> None:
    proc = in_process_cli("run", "--cases", "chain.*", "--list")
    assert proc.returncode == 0, proc.stderr
    assert "chain.module-codes" in proc.stdout and "36 cases" in proc.stdout
