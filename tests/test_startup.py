"""Start-up: commands that never reach an engine do not load the Docker SDK, and the
self-tests' worker count follows whether an engine answers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import sys
from pamconform.cli.main import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
loaded = sorted(m for m in ("docker.api", "paramiko", "requests.sessions") if m in sys.modules)
print("loaded:" + ",".join(loaded))
"""


@pytest.mark.parametrize("argv", [["--help"], ["run", "--no-lab", "--list"],
                                  ["server", "/tmp/pc-no-such-socket", "--credentials",
                                   "a:bbbb"], ["diff", "/dev/null", "/dev/null"]])
def test_a_command_without_the_lab_does_not_load_the_sdk(argv: list[str]) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True,
                          text=True, timeout=60, check=False, cwd=ROOT, env=env)
    assert proc.stdout.splitlines()[-1] == "loaded:", proc.stdout[-500:] + proc.stderr[-500:]


def test_the_sdk_loads_when_a_name_is_used() -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    code = ("import sys; from pamconform.lab.sdk import docker; "
            "assert 'docker.api' not in sys.modules; "
            "print(docker.errors.NotFound.__name__, 'docker.api' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False, env=env)
    assert proc.stdout.split() == ["NotFound", "True"], proc.stderr


def test_workers_follow_the_engine(monkeypatch: pytest.MonkeyPatch,
                                   pytestconfig: pytest.Config) -> None:
    import pamconform.lab as lab
    from pamconform.core.loader import import_path

    here = import_path("pamconform_selftest_conftest", Path(__file__).with_name("conftest.py"))

    cpus = os.cpu_count() or 1
    monkeypatch.delenv("PYTEST_XDIST_AUTO_NUM_WORKERS", raising=False)

    def missing(timeout: float) -> object:
        raise lab.EngineUnavailable("no engine")

    monkeypatch.setattr(lab, "connect", missing)
    assert here.pytest_xdist_auto_num_workers(pytestconfig) == 2 * cpus

    class Client:
        def close(self) -> None:
            pass

    monkeypatch.setattr(lab, "connect", lambda timeout: Client())
    monkeypatch.setattr(pytestconfig.option, "dist", "worksteal", raising=False)
    assert here.pytest_xdist_auto_num_workers(pytestconfig) == cpus
    assert pytestconfig.option.dist == "load"  # the lab's tests scheduled as always
    monkeypatch.setenv("PYTEST_XDIST_AUTO_NUM_WORKERS", "3")
    assert here.pytest_xdist_auto_num_workers(pytestconfig) == 3
