"""Ctrl-C and SIGTERM: the run stops, cleans up, writes what finished, exits 130 / 143."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from child_processes import children

from pamconform.cli.main import REFERENCE_CREDENTIALS
from pamconform.core import interrupts
from pamconform.core.registry import Case
from pamconform.core.runner import run_target
from pamconform.core.verdicts import Severity
from pamconform.lab import gallery
from pamconform.lab.localserver import LocalServer, reference_command
from pamconform.report import Run, write
from pamconform.report.baseline import compare, report_problem

ROOT = Path(__file__).resolve().parents[1]
#: Cases of the reference server in run order: two quick ones, one that waits for the
#: server's idle timeout (interrupted there), then two that never start.
SERVER_CASES = ["*.grant-valid", "*.deny-wrong-password", "*.silent-client-timeout",
                "*.concurrent-clients", "*.wrong-after-right"]


# --------------------------------------------------------------------- helpers


class Child:
    """A ``pamconform`` subprocess whose output is read as it comes."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pamconform.cli", *args], cwd=ROOT, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=dict(os.environ, PYTHONUNBUFFERED="1"))
        self.lines: list[str] = []
        self._seen = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._seen:
                self.lines.append(line)
                self._seen.notify_all()
        with self._seen:
            self.lines.append("")  # EOF marker
            self._seen.notify_all()

    def wait_for(self, wanted: Callable[[str], bool], timeout: float) -> str:
        deadline = time.monotonic() + timeout
        with self._seen:
            while True:
                for line in self.lines:
                    if line and wanted(line):
                        return line
                if self.lines[-1:] == [""]:
                    raise AssertionError(f"exited before the line: {''.join(self.lines)}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no such line in {timeout} s: {''.join(self.lines)}")
                self._seen.wait(left)

    def finish(self, timeout: float = 60) -> tuple[int, str, str]:
        try:
            rc = self.proc.wait(timeout)
        finally:
            self.proc.kill()
        self._reader.join(5)
        assert self.proc.stderr is not None
        return rc, "".join(self.lines), self.proc.stderr.read()

    def children(self) -> dict[int, str]:
        """The child processes (pid: command line) of the pamconform process."""
        return children(self.proc.pid)


def _report(directory: Path) -> dict[str, Any]:
    return json.loads((directory / "index.json").read_text())  # type: ignore[no-any-return]


def _verdicts(target: dict[str, Any]) -> list[str]:
    return [c["verdict"] for c in target["cases"]]


def _slow_reference_server() -> LocalServer:
    """The reference server with a long idle timeout: the silent-client case takes long."""
    return LocalServer(reference_command(["--idle-timeout", "60"]), REFERENCE_CREDENTIALS,
                       name="reference")


def _case(cid: str, func: Callable[[Any], None]) -> Case:
    return Case(cid, "R-X", Severity.MUST, cid, "test", "redirector", "server", func, "t")


class _Target:
    name = "unit"


def _signal_soon(signum: int, delay: float) -> threading.Timer:
    timer = threading.Timer(delay, os.kill, (os.getpid(), signum))
    timer.start()
    return timer


# --------------------------------------------------------------------- in-process units


def test_guard_turns_sigterm_into_interrupted_and_restores_handlers() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(interrupts.Interrupted) as info, interrupts.guard():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises in the main thread before this ends
    assert info.value.exit_code == 143 and info.value.signame == "SIGTERM"
    assert signal.getsignal(signal.SIGTERM) is before


def test_second_signal_during_clean_up_does_not_cut_it() -> None:
    cleaned = []
    with interrupts.guard():
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        except interrupts.Interrupted:
            os.kill(os.getpid(), signal.SIGINT)  # a second Ctrl-C while cleaning up
            time.sleep(0.05)
            cleaned.append(True)
        assert interrupts.exit_code() == 130
    assert cleaned == [True]


def test_shielded_defers_the_signal_to_the_end_of_the_block() -> None:
    done = []
    with pytest.raises(interrupts.Interrupted), interrupts.guard(), interrupts.shielded():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        done.append(True)
    assert done == [True]


def test_run_target_marks_running_case_interrupted_and_rest_not_run() -> None:
    cases = [_case("a", lambda ctx: None), _case("b", lambda ctx: time.sleep(30)),
             _case("c", lambda ctx: None)]
    seen = []
    timer = _signal_soon(signal.SIGINT, 0.5)
    try:
        with pytest.raises(interrupts.Interrupted) as info, interrupts.guard():
            run_target(cases, _Target(), kind="server", protocol="redirector",
                       progress=lambda i, n, r: seen.append((i, str(r.verdict))))
    finally:
        timer.cancel()
    partial = info.value.partial
    assert [str(r.verdict) for r in partial.results] == ["PASS", "INTERRUPTED", "NOT-RUN"]
    assert "SIGINT" in partial.results[1].message
    assert partial.info["interrupted"] == {"signal": "SIGINT", "case": "b"}
    assert seen == [(1, "PASS"), (2, "INTERRUPTED")]


def test_report_writers_take_the_stopped_verdicts(tmp_path: Path) -> None:
    cases = [_case("a", lambda ctx: None), _case("b", lambda ctx: time.sleep(30)),
             _case("c", lambda ctx: None)]
    timer = _signal_soon(signal.SIGTERM, 0.3)
    try:
        with pytest.raises(interrupts.Interrupted) as info, interrupts.guard():
            run_target(cases, _Target(), kind="server", protocol="redirector")
    finally:
        timer.cancel()
    run = Run(targets=[info.value.partial], interrupted="SIGTERM")
    write(run, tmp_path)
    data = _report(tmp_path)
    assert data["interrupted"] == "SIGTERM"
    assert data["targets"][0]["summary"] == {"PASS": 1, "INTERRUPTED": 1, "NOT-RUN": 1}
    junit = (tmp_path / "junit.xml").read_text()
    assert 'skipped="2"' in junit and junit.count("<skipped ") == 2
    assert 'message="not run: the run was stopped by SIGTERM"' in junit
    html = (tmp_path / "index.html").read_text()
    assert 'data-v="INTERRUPTED"' in html and 'data-v="NOT-RUN"' in html
    assert "stopped by SIGTERM" in html
    # a report without them shows no such filters
    write(Run(targets=[]), tmp_path / "plain")
    assert 'data-v="NOT-RUN"' not in (tmp_path / "plain" / "index.html").read_text()


def test_not_run_and_interrupted_are_no_regression() -> None:
    def report(*verdicts: str) -> dict[str, Any]:
        return {"targets": [{"name": "t", "cases": [
            {"id": f"c{i}", "verdict": v, "duration_s": 0.1} for i, v in enumerate(verdicts)]}]}

    stopped = report("PASS", "INTERRUPTED", "NOT-RUN")
    assert report_problem(stopped) is None  # a stopped run's report is a valid baseline
    diff = compare(report("PASS", "PASS", "FAIL"), stopped)
    assert not diff.regression
    assert [(c.old, c.new) for c in diff.changed] == [("PASS", "INTERRUPTED"),
                                                     ("FAIL", "NOT-RUN")]
    assert compare(report("PASS"), report("FAIL")).regression  # still caught


# --------------------------------------------------------------------- the command


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_server_interrupted_writes_report_and_exits_128_plus_signal(
        tmp_path: Path, signum: int, code: int) -> None:
    report = tmp_path / "report"
    with _slow_reference_server() as server:
        child = Child("server", str(server.socket), "--credentials", "alice:alice-auth-pw",
                      *[a for glob in SERVER_CASES for a in ("--cases", glob)],
                      "--idle-limit", "30", "--jobs", "1", "--report", str(report))
        child.wait_for(lambda line: line.startswith("[2/5]"), timeout=60)
        time.sleep(0.5)  # into the silent-client case, which waits for the idle timeout
        started = time.monotonic()
        child.proc.send_signal(signum)
        rc, out, err = child.finish()
        assert time.monotonic() - started < 15
    assert rc == code, out + err
    assert "Traceback" not in err
    data = _report(report)
    name = signal.Signals(signum).name
    assert data["interrupted"] == name
    (target,) = data["targets"]
    assert _verdicts(target) == ["PASS", "PASS", "INTERRUPTED", "NOT-RUN", "NOT-RUN"]
    assert target["cases"][2]["id"].endswith("silent-client-timeout")
    assert name in target["cases"][2]["message"]
    assert target["interrupted"]["case"].endswith("silent-client-timeout")
    assert 'skipped="3"' in (report / "junit.xml").read_text()
    assert f"stopped by {name}" in out


def test_run_interrupted_stops_its_servers_and_lists_unstarted_targets(tmp_path: Path) -> None:
    report = tmp_path / "report"
    child = Child("run", "--no-lab", "--cases", "redir.server.grant-valid", "--cases",
                  "redir.server.silent-client-timeout", "--cases",
                  "token.server.accept-exact-token",
                  "--idle-limit", "30", "--jobs", "1", "--report", str(report))
    child.wait_for(lambda line: line.startswith("[1/2]"), timeout=60)
    time.sleep(0.5)
    servers = {pid: cmd for pid, cmd in child.children().items() if "serve" in cmd}
    assert servers, "the reference server is a child of pamconform"
    sockets = [Path(arg) for cmd in servers.values() for arg in cmd.split()
               if arg.endswith("/socket")]
    assert sockets and all(s.parent.is_dir() for s in sockets)
    child.proc.send_signal(signal.SIGINT)
    rc, out, err = child.finish()
    assert rc == 130, out + err
    for pid in servers:  # the local server was stopped ...
        assert not Path(f"/proc/{pid}").exists() or "serve" not in \
            Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    assert not any(s.parent.exists() for s in sockets)  # ... and its directory removed
    targets = {t["name"]: _verdicts(t) for t in _report(report)["targets"]}
    assert targets == {"reference-server": ["PASS", "INTERRUPTED"],
                       "reference-token-server": ["NOT-RUN"]}


def test_a_forced_quit_still_stops_its_servers_and_removes_their_files(
        tmp_path: Path) -> None:
    """The third signal quits at once, without the report, but the local server (a
    process group of its own, which would outlive pamconform) and its directory (the
    logins' hashes) go all the same."""
    child = Child("run", "--no-lab", "--cases", "redir.server.grant-valid", "--cases",
                  "redir.server.silent-client-timeout", "--idle-limit", "30", "--jobs", "1",
                  "--report", str(tmp_path / "report"))
    child.wait_for(lambda line: line.startswith("[1/1]") or line.startswith("[1/2]"),
                   timeout=60)
    time.sleep(0.5)
    servers = {pid: cmd for pid, cmd in child.children().items() if "serve" in cmd}
    sockets = [Path(arg) for cmd in servers.values() for arg in cmd.split()
               if arg.endswith("/socket")]
    assert servers and sockets
    for _ in range(interrupts.FORCE_QUIT_AT):
        child.proc.send_signal(signal.SIGINT)
        time.sleep(0.05)
    rc, out, err = child.finish()
    assert rc == 130 and "quitting without finishing" in err, out + err
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in servers) and \
            time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in servers:
        assert not Path(f"/proc/{pid}").exists() or "serve" not in \
            Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    assert not any(s.parent.exists() for s in sockets)


def test_fuzz_interrupted_keeps_findings_and_exits_130(tmp_path: Path) -> None:
    report = tmp_path / "report"
    with LocalServer(gallery.commands()["prefix-match"], REFERENCE_CREDENTIALS,
                     name="prefix-match") as server:
        child = Child("fuzz", "server", str(server.socket), "--credentials",
                      "alice:alice-auth-pw", "--credentials", "bob:bob-auth-pw",
                      "--seconds", "120", "--report", str(report))
        child.wait_for(lambda line: "finding: grant" in line, timeout=60)
        child.proc.send_signal(signal.SIGINT)
        rc, out, err = child.finish()
    assert rc == 130, out + err
    assert "stopped by interrupted" in out
    findings = list((report / "findings").glob("grant-*.json"))
    assert findings, out
    data = _report(report)
    (target,) = data["targets"]
    grant = next(c for c in target["cases"] if c.get("evidence", {}).get("findings"))
    assert grant["verdict"] == "FAIL"
    assert any("stopped by interrupted" in n for n in grant["evidence"]["notes"])


# --------------------------------------------------------------------- the lab


def _owned_by(client: Any, pid: int) -> list[Any]:
    from pamconform.lab.containers import OWNER_LABEL

    owner = f"{socket.gethostname()}:{pid}"
    return client.containers.list(all=True, filters={"label": f"{OWNER_LABEL}={owner}"})


def _module_child(report: Path) -> Child:
    return Child("module", str(ROOT / "modules" / "pam_redirector"), "--cases",
                 "redir.module.grant", "--cases", "redir.module.server-delay-over-timeout",
                 "--report", str(report))


@pytest.mark.docker
@pytest.mark.parametrize("signals", [1, 2], ids=["ctrl-c", "ctrl-c-twice"])
def test_module_interrupted_leaves_no_container(docker_client: Any, tmp_path: Path,
                                                signals: int) -> None:
    report = tmp_path / "report"
    child = _module_child(report)
    try:
        child.wait_for(lambda line: line.startswith("[1/2]"), timeout=600)
        assert _owned_by(docker_client, child.proc.pid)
        time.sleep(0.5)
        for _ in range(signals):
            child.proc.send_signal(signal.SIGINT)
            time.sleep(0.05)  # the second one lands in the clean-up
        rc, out, err = child.finish(timeout=120)
    finally:
        child.proc.kill()
    assert rc == 130, out + err
    if signals == 2:
        assert "still cleaning up" in err
    assert _owned_by(docker_client, child.proc.pid) == []
    (target,) = _report(report)["targets"]
    assert _verdicts(target) == ["PASS", "INTERRUPTED"]


@pytest.mark.docker
def test_killed_run_leftovers_go_at_the_next_start(docker_client: Any, tmp_path: Path) -> None:
    from pamconform.lab import LabSession

    child = _module_child(tmp_path / "report")
    try:
        child.wait_for(lambda line: line.startswith("[1/2]"), timeout=600)
    finally:
        child.proc.kill()  # no clean-up at all: the worst case of an impatient user
    child.finish()
    left = _owned_by(docker_client, child.proc.pid)
    try:
        assert left, "SIGKILL leaves the container behind"
        with LabSession(docker_client, handle_signals=False):
            pass  # a new run's start removes the stale containers of dead runs
        assert _owned_by(docker_client, child.proc.pid) == []
    finally:
        for c in _owned_by(docker_client, child.proc.pid):
            c.remove(force=True)
