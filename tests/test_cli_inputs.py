"""Bad input is one clear line and exit 2, never a traceback, exit 3 or a run that never ends."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pamconform.cli.main import REFERENCE_CREDENTIALS
from pamconform.core.credentials import parse_credentials
from pamconform.lab.localserver import LocalServer, reference_command

GOOD = "alice:alice-auth-pw"
CliRun = Callable[..., subprocess.CompletedProcess[str]]  # the in_process_cli fixture


@pytest.fixture(scope="module")
def reference() -> Iterator[LocalServer]:
    with LocalServer(reference_command(), REFERENCE_CREDENTIALS, name="reference") as server:
        yield server


def _run(*args: str | bytes, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pamconform.cli", *args], capture_output=True,
                          text=True, timeout=timeout, check=False, errors="replace")


def _one_line_exit_2(proc: subprocess.CompletedProcess[str], needle: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-2000:], proc.stderr)
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert needle in proc.stderr, proc.stderr


# ------------------------------------------------------------- time and count options

SOCKET_ARGS = ["/tmp/pc-no-such-socket", "--credentials", "a:bbbb"]


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-1", "0", "1e300", "abc"])
@pytest.mark.parametrize(
    "command",
    [
        ["bench", *SOCKET_ARGS, "--seconds"],
        ["bench", *SOCKET_ARGS, "--timeout"],
        ["fuzz", "server", *SOCKET_ARGS, "--seconds"],
        ["fuzz", "server", *SOCKET_ARGS, "--timeout"],
        ["fuzz", "module", "/tmp", "--seconds"],
        ["fuzz", "module", "/tmp", "--hang-bound"],
        ["fuzz", "replay", "/tmp/f.json", "/tmp/s", "--timeout"],
        ["server", *SOCKET_ARGS, "--timeout"],
        ["server", *SOCKET_ARGS, "--idle-limit"],
        ["server", "--protocol", "transient-token", "--token", "x", "--expiry"],
        ["module", "/tmp", "--login-timeout"],
        ["run", "--timeout"],
    ],
)
def test_bad_seconds(command: list[str], value: str, in_process_cli: CliRun) -> None:
    _one_line_exit_2(in_process_cli(*command, value), f"argument {command[-1]}:")


@pytest.mark.parametrize("value", ["-1", "0", "1.5", "nan", "10000000000000", "\u00b2",
                                   "\u0663", "1_0", "+4", " 5 "])
@pytest.mark.parametrize(
    "command",
    [
        ["server", *SOCKET_ARGS, "--jobs"],
        ["run", "--parallel"],
        ["bench", *SOCKET_ARGS, "--concurrency"],
        ["bench", *SOCKET_ARGS, "--count"],
        ["bench", *SOCKET_ARGS, "--workers"],
        ["fuzz", "server", *SOCKET_ARGS, "--max-examples"],
        ["fuzz", "server", *SOCKET_ARGS, "--memory-limit"],
        ["fuzz", "module", "/tmp", "--servers"],
        ["fuzz", "module", "/tmp", "--max-examples"],
    ],
)
def test_bad_counts(command: list[str], value: str, in_process_cli: CliRun) -> None:
    _one_line_exit_2(in_process_cli(*command, value), f"argument {command[-1]}:")


@pytest.mark.parametrize(("value", "needle"), [
    ("1/99999999999999", "at most 10000 shards"), ("\u00b9/3", "expected K/N"),
    ("3/2", "K must be between 1 and N")])
def test_bad_shards(value: str, needle: str, in_process_cli: CliRun) -> None:
    _one_line_exit_2(in_process_cli("run", "--no-lab", "--list", "--shard", value), needle)


@pytest.mark.parametrize("value", ["nan", "inf", "-1"])
@pytest.mark.parametrize("option", ["--time-min", "--time-threshold"])
def test_bad_diff_times(option: str, value: str, in_process_cli: CliRun,
                        tmp_path: Path) -> None:
    (tmp_path / "index.json").write_text('{"targets": []}')
    report = str(tmp_path / "index.json")
    _one_line_exit_2(in_process_cli("diff", report, report, option, value), f"argument {option}:")


@pytest.mark.parametrize("args", [["bench", *SOCKET_ARGS, "--seconds", "nan"],
                                  ["fuzz", "module", "/tmp", "--max-examples", "0"]])
def test_bad_numbers_through_the_entry_point(args: list[str]) -> None:
    """The matrices above call ``main()``; the installed entry point says the same."""
    _one_line_exit_2(_run(*args, timeout=20), f"argument {args[-2]}:")


@pytest.mark.parametrize("option", ["--max-findings", "--shrink-replays"])
def test_counts_that_may_be_zero(option: str) -> None:
    _one_line_exit_2(_run("fuzz", "server", *SOCKET_ARGS, option, "-1"), f"argument {option}:")
    # 0 is allowed: the run gets as far as the missing socket
    _one_line_exit_2(_run("fuzz", "server", *SOCKET_ARGS, option, "0"), "no such socket")


def test_bench_seconds_nan_does_not_run_forever(reference: LocalServer) -> None:
    proc = _run("bench", str(reference.socket), "--credentials", GOOD, "--seconds", "nan",
                timeout=30)
    _one_line_exit_2(proc, "finite")


# ------------------------------------------------------------------------ credentials


def test_non_utf8_credentials_are_sent_as_given(reference: LocalServer) -> None:
    assert parse_credentials([os.fsdecode(b"al\xffice:pw\xfe\xfd\xfc")]) == [
        (b"al\xffice", b"pw\xfe\xfd\xfc")]
    proc = subprocess.run([sys.executable, "-m", "pamconform.cli", "server",
                           str(reference.socket).encode(),
                           "--credentials", b"alice:\xff\xfe\xfd\xfc"],
                          capture_output=True, timeout=60, check=False)
    assert proc.returncode == 2, proc.stderr
    assert b"Traceback" not in proc.stderr and b"harness error" not in proc.stderr
    assert b"refused alice's login" in proc.stderr


# ---------------------------------------------------------------- the report directory


@pytest.mark.parametrize("where", ["/proc/pc-report", "/etc/passwd/report"])
def test_unwritable_report_is_refused_before_the_run(reference: LocalServer, where: str) -> None:
    proc = _run("server", str(reference.socket), "--credentials", GOOD, "--report", where)
    _one_line_exit_2(proc, f"--report {where}")
    assert "cases against" not in proc.stdout  # no case ran


def test_unwritable_report_for_fuzz(reference: LocalServer) -> None:
    proc = _run("fuzz", "server", str(reference.socket), "--credentials", GOOD, "--seconds",
                "1", "--report", "/etc/passwd/report")
    _one_line_exit_2(proc, "--report /etc/passwd/report")
    assert "fuzzing" not in proc.stdout
    proc = _run("fuzz", "server", str(reference.socket), "--credentials", GOOD, "--seconds",
                "1", "--save-regressions", "/etc/passwd/regressions")
    _one_line_exit_2(proc, "--save-regressions /etc/passwd/regressions")
    assert "fuzzing" not in proc.stdout


def test_unwritable_report_for_audit() -> None:
    stack = Path(__file__).resolve().parents[1] / "examples" / "stacks" / "optional" / "sshd"
    proc = _run("audit", str(stack), "--report", "/etc/passwd/report")
    _one_line_exit_2(proc, "--report /etc/passwd/report")
    assert "fail" not in proc.stdout.lower()  # no table printed before the refusal


# ---------------------------------------------------------------------- socket paths


def test_socket_path_too_long(tmp_path: Path) -> None:
    long = Path("/tmp") / ("d" * 200) / "socket"
    for command in (["server"], ["bench"], ["fuzz", "server"]):
        proc = _run(*command, str(long), "--credentials", "a:bbbb")
        _one_line_exit_2(proc, "a UNIX socket path is at most 107 bytes")


# ----------------------------------------------------------------------------- JSON


def _deep(path: Path) -> Path:
    path.write_text("[" * 200_000 + "]" * 200_000)
    return path


def _huge(path: Path) -> Path:
    with open(path, "wb") as f:
        f.truncate(65 << 20)  # sparse: larger than any cap, cheap to make
    return path


@pytest.mark.parametrize("make", [_deep, _huge])
def test_diff_refuses_deep_or_huge_json(tmp_path: Path, make: Callable[[Path], Path]) -> None:
    bad = make(tmp_path / "bad.json")
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"targets": []}))
    why = "JSON nested too deeply" if make is _deep else "larger than 64 MiB"
    for args in ((str(bad), str(good)), (str(good), str(bad))):
        proc = _run("diff", *args)
        _one_line_exit_2(proc, f"{bad}: {why}")


@pytest.mark.parametrize(("number", "needle"), [
    ("1" + "0" * 400, "an integer of 401 digits"), ("1" * 5001, "an integer of 5001 digits"),
    ("1e400", "the number 1e400 (too large)"), ("Infinity", "Infinity (not a number"),
    ("NaN", "NaN (not a number")])
@pytest.mark.parametrize("command", [["diff", "{good}", "{bad}"], ["merge", "{bad}", "--report",
                                                                   "{out}"],
                                     ["fuzz", "replay", "{bad}", "/tmp/pc-no-such-socket"]])
def test_a_number_no_report_holds_is_refused_in_one_line(
        tmp_path: Path, number: str, needle: str, command: list[str],
        in_process_cli: CliRun) -> None:
    """It used to pass the shape check and end in an OverflowError (exit 3), with
    ``--baseline`` after the whole run."""
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"targets": []}))
    bad = tmp_path / "bad.json"
    bad.write_text('{"targets": [], "duration_s": ' + number + ', "pauses": [' + number + "]}")
    args = [a.format(good=good, bad=bad, out=tmp_path / "out") for a in command]
    _one_line_exit_2(in_process_cli(*args), needle)


def test_a_replayed_finding_may_not_pause_for_ever(tmp_path: Path,
                                                   in_process_cli: CliRun) -> None:
    finding = tmp_path / "f.json"
    finding.write_text(json.dumps({
        "protocol": "redirector", "kind": "grant", "chunks_hex": ["61", "62"],
        "pauses": [1e9], "shutdown": True, "expected": "", "observed": "", "seed": 1}))
    _one_line_exit_2(in_process_cli("fuzz", "replay", str(finding), "/tmp/pc-no-such-socket"),
                     "pauses must be 0..300 seconds in all")


def test_baseline_refuses_deep_json(tmp_path: Path) -> None:
    proc = _run("server", "--baseline", str(_deep(tmp_path / "bad.json")))
    _one_line_exit_2(proc, "nested too deeply")


def test_diff_refuses_an_endless_file() -> None:
    proc = _run("diff", "/dev/zero", "/dev/zero")
    _one_line_exit_2(proc, "/dev/zero")


def test_a_fifo_is_refused_not_waited_on(tmp_path: Path) -> None:
    """No writer will ever come: opening it for reading must not block."""
    fifo = tmp_path / "report.json"
    os.mkfifo(fifo)
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"targets": []}))
    proc = _run("diff", str(fifo), str(good), timeout=30)
    _one_line_exit_2(proc, f"{fifo}: not a regular file")


@pytest.mark.parametrize("make", [_deep, _huge])
def test_shard_weights_refuse_deep_or_huge_json(tmp_path: Path,
                                                make: Callable[[Path], Path]) -> None:
    bad = make(tmp_path / "w.json")
    proc = _run("run", "--no-lab", "--shard", "1/2", "--shard-weights", str(bad), "--list")
    _one_line_exit_2(proc, "nested too deeply" if make is _deep else "larger than 64 MiB")


@pytest.mark.parametrize("make", [_deep, _huge])
def test_replay_refuses_deep_or_huge_json(tmp_path: Path, make: Callable[[Path], Path]) -> None:
    proc = _run("fuzz", "replay", str(make(tmp_path / "f.json")), "/tmp/pc-no-such-socket")
    _one_line_exit_2(proc, "nested too deeply" if make is _deep else "larger than 16 MiB")


# ------------------------------------------------------------------ output and --help


def test_list_into_a_closed_pipe_is_quiet() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "pamconform.cli", "server", "--list"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the first line is written
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 141
    assert err == b""


def test_list_into_head() -> None:
    proc = subprocess.run(f"{sys.executable} -m pamconform.cli run --no-lab --list | head -1",
                          shell=True, capture_output=True, text=True, timeout=60, check=False)
    assert len(proc.stdout.splitlines()) == 1
    assert proc.stderr == ""


def test_reference_server_help() -> None:
    proc = _run("reference-server", "--help")
    assert proc.returncode == 0, proc.stderr
    assert "serve" in proc.stdout and "adduser" in proc.stdout


# ------------------------------------------------------------------------------ bench


def _first_grants(then: Callable[[socket.socket], None]) -> Callable[[socket.socket], None]:
    """A server that grants the first connection (the login check), then does ``then``."""
    lock = threading.Lock()
    seen = [0]

    def handler(conn: socket.socket) -> None:
        if not conn.recv(4096):
            return  # the check that something listens
        with lock:
            seen[0] += 1
            first = seen[0] == 1
        if first:
            conn.sendall(b"0")
        else:
            then(conn)

    return handler


def test_bench_fails_when_no_round_trip_completed(scripted) -> None:  # type: ignore[no-untyped-def]
    server = scripted(_first_grants(lambda conn: None))  # closes without a reply
    proc = _run("bench", str(server.path), "--credentials", GOOD, "--count", "5",
                "--seconds", "5", "--concurrency", "1", "--workers", "1")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "no round trip completed" in proc.stderr and "Traceback" not in proc.stderr


def test_bench_fails_when_every_reply_contradicts(scripted) -> None:  # type: ignore[no-untyped-def]
    server = scripted(_first_grants(lambda conn: conn.sendall(b"1")))  # denies valid logins
    proc = _run("bench", str(server.path), "--credentials", GOOD, "--mix", "grant",
                "--count", "5", "--seconds", "5", "--concurrency", "1", "--workers", "1")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "contradicted the logins" in proc.stderr


def test_bench_passes_on_the_reference(reference: LocalServer) -> None:
    proc = _run("bench", str(reference.socket), "--credentials", GOOD, "--count", "4",
                "--seconds", "5", "--json")
    assert proc.returncode == 0, proc.stderr


def test_a_password_too_short_to_redact_is_refused() -> None:
    """A 3-byte password would be written in clear (it cannot be told from text): refuse it."""
    from pamconform.core.errors import UsageError

    with pytest.raises(UsageError, match="shorter than 4 bytes") as err:
        parse_credentials(["pc-short:abc"])
    assert "abc" not in str(err.value)
    assert parse_credentials(["pc-short:abcd"]) == [(b"pc-short", b"abcd")]


@pytest.mark.parametrize("args", [
    ["run", "--no-lab", "--credentials", "alice:Zq7xK9pLmW3v"],
    ["run", "--credentials=alice:Zq7xK9pLmW3v"],
    ["run", "--credential", "alice:Zq7xK9pLmW3v"],  # no abbreviations: unrecognised too
])
def test_an_unrecognised_option_is_named_without_its_value(args: list[str]) -> None:
    """``run`` takes no --credentials: the error names the option, never the password."""
    proc = _run(*args)
    assert proc.returncode == 2 and "unrecognized arguments: --credential" in proc.stderr
    assert "Zq7xK9" not in proc.stderr + proc.stdout and "Traceback" not in proc.stderr


@pytest.mark.parametrize("command", [["server", *SOCKET_ARGS], ["fuzz", "server", *SOCKET_ARGS],
                                     ["module", "/tmp"]])
def test_a_name_that_would_forge_an_output_line_is_refused(command: list[str],
                                                           in_process_cli: CliRun) -> None:
    _one_line_exit_2(in_process_cli(*command, "--name", "x\nPASS y"),
                     "a name of printable characters")
