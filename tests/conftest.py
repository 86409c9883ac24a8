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

from pamconform.lab.localserver import SCRYPT_N_ENV

#: The local reference servers of the tests hash their logins at scrypt N=1024, not 16384
#: (as a test settings file picks a fast password hasher): a sixteenth of the CPU per
#: login. Set before any test starts a server; the CLI subprocesses inherit it. A
#: value in the environment wins (16384: the tests at the reference server's own cost).
os.environ.setdefault(SCRYPT_N_ENV, "1024")


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
    processes (and ``--dist worksteal`` stays). ``PYTEST_XDIST_AUTO_NUM_WORKERS`` still
    decides when set."""
    cpus = os.cpu_count() or 1
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS", "").strip().isdigit():
        return int(os.environ["PYTEST_XDIST_AUTO_NUM_WORKERS"])
    from pamconform.lab import EngineUnavailable, connect

    try:
        connect(timeout=5).close()
    except EngineUnavailable:
        return 2 * cpus
    # with the lab, tests go out as they always have (``load``): worksteal moves queued
    # tests between workers late, which changes which lab tests share the CPU
    if config.option.dist == "worksteal":
        config.option.dist = "load"
    return cpus


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
