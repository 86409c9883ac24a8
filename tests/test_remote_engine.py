"""The lab runs on whatever engine ``DOCKER_HOST`` names: a second engine on another socket
of this machine stands in for a remote one (the SDK and the ``docker exec`` logins both
follow the variable; nothing of the run touches the default engine)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parents[1]


def lab_unavailable(reason: str) -> None:
    """Skip, or fail where the lab is required (as the lab fixtures of conftest.py)."""
    if os.environ.get("PAMCONFORM_REQUIRE_LAB") == "1":
        pytest.fail(f"the lab is required here but unavailable: {reason}")
    pytest.skip(reason)


def _docker(host: str, *args: str, timeout: float = 300, **kw: object
            ) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["docker", "-H", host, *args], capture_output=True, timeout=timeout,
                          check=False, **kw)  # type: ignore[call-overload]


@pytest.fixture(scope="module")
def second_engine(docker_client: object) -> Iterator[str]:
    """A second dockerd on its own socket, data and exec roots, with no bridge, in a network
    namespace of its own; always stopped and removed after.

    The namespace matters: a dockerd started with ``--bridge=none`` deletes any interface
    named docker0 it sees, which in the host's namespace is the first engine's bridge."""
    if os.geteuid() != 0 or not all(map(shutil.which, ("dockerd", "docker", "unshare"))):
        lab_unavailable("a second engine needs root, dockerd, unshare and the docker CLI")
    bridge_before = _host_bridges()
    top = Path(tempfile.mkdtemp(prefix="pc-eng-", dir="/var/tmp"))
    sock = top / "d.sock"
    (top / "daemon.json").write_text("{}")
    host = f"unix://{sock}"
    log = (top / "dockerd.log").open("wb")
    proc = subprocess.Popen(
        ["unshare", "--net", "--", "dockerd", "--host", host, "--data-root", str(top / "data"),
         "--exec-root",
         str(top / "exec"), "--pidfile", str(top / "d.pid"), "--config-file",
         str(top / "daemon.json"), "--bridge=none", "--iptables=false", "--ip-masq=false"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while _docker(host, "info", timeout=10).returncode != 0:
            if proc.poll() is not None or time.monotonic() > deadline:
                lab_unavailable("the second dockerd did not start: "
                                + (top / "dockerd.log").read_text()[-400:])
            time.sleep(0.5)
        yield host
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log.close()
        subprocess.run(["umount", "-R", str(top / "exec")], capture_output=True, check=False)
        shutil.rmtree(top, ignore_errors=True)
    assert _host_bridges() == bridge_before, "the second engine changed this host's bridges"


def _host_bridges() -> set[str]:
    """The bridge interfaces of this host's network namespace."""
    net = Path("/sys/class/net")
    return {p.name for p in net.iterdir() if (p / "bridge").is_dir()} if net.is_dir() else set()


def _lab_images(docker_client: object) -> list[str]:
    """The base and lab images of the default engine this checkout's lab uses."""
    from pamconform.lab import images

    root = images.find_root()
    lab = images.ensure_lab_image(docker_client, root)  # type: ignore[arg-type]
    return [images.base_tag(), lab]


def test_the_lab_runs_on_the_engine_docker_host_names(docker_client, second_engine,
                                                      tmp_path) -> None:
    wanted = _lab_images(docker_client)
    # the images move over as `docker save | docker load` (the second engine has no network)
    save = subprocess.Popen(["docker", "save", *wanted], stdout=subprocess.PIPE)
    loaded = _docker(second_engine, "load", "-q", stdin=save.stdout)
    assert save.stdout is not None
    save.stdout.close()
    assert save.wait(timeout=300) == 0 and loaded.returncode == 0, loaded.stderr
    since = str(int(time.time()))
    out = tmp_path / "report"
    env = dict(os.environ, DOCKER_HOST=second_engine, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", "pamconform.cli", "module", str(ROOT / "modules" /
         "pam_redirector"), "--cases", "redir.e2e.su-grant", "--cases",
         "redir.e2e.ssh-grant", "--report", str(out), "--quiet"],
        env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads((out / "index.json").read_text())
    assert {c["id"]: c["verdict"] for c in data["targets"][0]["cases"]} == {
        "redir.e2e.su-grant": "PASS", "redir.e2e.ssh-grant": "PASS"}
    until = str(int(time.time()) + 1)
    created = _docker(second_engine, "events", "--since", since, "--until", until,
                      "--filter", "type=container", "--filter", "event=create",
                      "--filter", "label=pamconform=1", "--format", "{{.Actor.Attributes.name}}")
    names = created.stdout.decode().split()
    assert names, "the run created no container on the engine DOCKER_HOST names"
    # ... and none of them on the default engine
    default = subprocess.run(["docker", "events", "--since", since, "--until", until,
                              "--filter", "type=container", "--filter", "event=create",
                              "--format", "{{.Actor.Attributes.name}}"],
                             capture_output=True, text=True, timeout=60, check=False)
    assert not set(names) & set(default.stdout.split())
    # the run cleaned up after itself on that engine
    left = _docker(second_engine, "ps", "-aq", "--filter", "label=pamconform=1")
    assert left.stdout.strip() == b""
