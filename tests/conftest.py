"""Shared fixtures of the self-tests."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


@pytest.fixture
def in_process_cli(capsys: pytest.CaptureFixture[str],
                   ) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``pamconform ARGS`` through ``main()`` in this process, as a completed process: what
    the entry point runs, without an interpreter start per call (for the tables of bad
    inputs; each table keeps a case through the real entry point)."""
    from pamconform.cli.main import main

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        capsys.readouterr()
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse's exit after its one line
            code = exc.code if isinstance(exc.code, int) else 2
        out = capsys.readouterr()
        return subprocess.CompletedProcess(["pamconform", *args], code, out.out, out.err)

    return run


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A private directory with a short path (sun_path holds 108 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="pc-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


Handler = Callable[[socket.socket], None]


class ScriptedServer:
    """A one-handler UNIX socket server in a thread, for client unit tests."""

    def __init__(self, path: Path, handler: Handler) -> None:
        self.path = path
        self.handler = handler
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(5)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            self.handler(conn)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(2)
        self.sock.close()


@pytest.fixture
def scripted(short_dir: Path) -> Iterator[Callable[[Handler], ScriptedServer]]:
    """Start scripted servers on sockets in a short private dir; all closed after."""
    servers: list[ScriptedServer] = []

    def start(handler: Handler) -> ScriptedServer:
        server = ScriptedServer(short_dir / f"s{len(servers)}", handler)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto`` (what tox runs): one worker per CPU when a Docker engine answers, as
    the lab's timing and valgrind cases need the CPU they measure with; two per CPU
    without one, as the other tests mostly wait on sockets, timeouts and child
    processes. ``PYTEST_XDIST_AUTO_NUM_WORKERS`` still decides when set."""
    cpus = os.cpu_count() or 1
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS", "").strip().isdigit():
        return int(os.environ["PYTEST_XDIST_AUTO_NUM_WORKERS"])
    from pamconform.lab import EngineUnavailable, connect

    try:
        connect(timeout=5).close()
    except EngineUnavailable:
        return 2 * cpus
    return cpus


#: Self-tests that hold a worker for 15 s or more without the lab (measured with
#: ``--durations``), by file and function (every parameter of it). They go first.
LONG_TESTS = {
    "test_concurrency_verdicts.py::test_server_suite_same_verdicts_with_one_job_and_with_the_pool",
    "test_concurrency_verdicts.py::test_faulty_server_same_verdicts_with_one_job_and_with_the_pool",
    "test_report_privacy.py::test_server_runs_never_show_the_password",
    "test_report_privacy.py::test_token_suite_never_shows_a_token",
    "test_suite_catches.py::test_correct_design_passes_every_case",
    "test_suite_catches.py::test_reference_server_passes_every_must_case",
    "test_suite_catches.py::test_a_documented_policy_is_reported_not_failed",
    "test_fuzz_server.py::test_hand_written_suite_misses_fuzz_only_defect",
    "test_report_browser.py::test_real_report_renders",
    "test_plugin.py::test_reference_server_passes_as_pytest",
    "test_run_parallel.py::test_a_failing_target_sets_the_exit_code_as_in_one_lane",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under xdist's ``worksteal`` each worker first gets one slice of the tests in order:
    the long ones are dealt to the slices' fronts, so none starts near the end and keeps
    one worker busy while the others are done (each slice keeps its size)."""
    workers = int(getattr(config, "workerinput", {}).get("workercount", 0))
    if workers < 2 or config.getoption("dist", "no") != "worksteal":
        return
    long = [i for i in items if f"{Path(str(i.path)).name}::{i.originalname}" in LONG_TESTS]
    if not long:
        return
    chosen = {id(i) for i in long}
    rest = iter([i for i in items if id(i) not in chosen])
    fronts: list[list[pytest.Item]] = [long[k::workers] for k in range(workers)]
    ordered: list[pytest.Item] = []
    left = len(items)
    for k in range(workers):  # the slice sizes worksteal sends: what is left, shared out
        size = left // (workers - k)
        ordered += fronts[k] + [next(rest) for _ in range(max(0, size - len(fronts[k])))]
        left -= size
    ordered += list(rest)
    assert len(ordered) == len(items)
    items[:] = ordered


def lab_unavailable(reason: str) -> None:
    """Skip a lab test, or fail it where the lab is required (CI sets PAMCONFORM_REQUIRE_LAB)."""
    if os.environ.get("PAMCONFORM_REQUIRE_LAB") == "1":
        pytest.fail(f"the lab is required here but unavailable: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def docker_client() -> Iterator[object]:
    """A Docker client, or a skip (a failure under PAMCONFORM_REQUIRE_LAB=1)."""
    from pamconform.lab import EngineUnavailable, connect

    try:
        client = connect(timeout=5)
    except EngineUnavailable as exc:
        lab_unavailable(str(exc))
    yield client
    client.close()
