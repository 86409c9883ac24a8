"""The lab runs on whatever engine ``DOCKER_HOST`` names: a second engine on another socket
of this machine stands in for a remote one (the SDK and the ``docker exec`` logins both
follow the variable; nothing of the run touches the default engine). The same engine is
also reached as ``ssh://``: through an sshd in a container of the default engine, published
on loopback only, with the second engine's socket and the ``docker`` CLI mounted in, and a
private ssh configuration (this host's ``~/.ssh`` and ``/etc/ssh`` are never read)."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


@pytest.fixture(scope="module")
def lab_engine(docker_client: object, second_engine: str) -> str:
    """The second engine, given this checkout's lab images (it has no registry or network:
    they move over as ``docker save | docker load``)."""
    wanted = _lab_images(docker_client)
    save = subprocess.Popen(["docker", "save", *wanted], stdout=subprocess.PIPE)
    assert save.stdout is not None
    try:
        loaded = _docker(second_engine, "load", "-q", stdin=save.stdout)
    finally:
        save.stdout.close()
        try:
            save.wait(timeout=300)
        except subprocess.TimeoutExpired:
            save.kill()
            save.wait(timeout=10)
    assert save.returncode == 0 and loaded.returncode == 0, loaded.stderr
    return second_engine


#: Two real logins through the module, one by su and one by sshd: cheap, and they use
#: both ways the lab reaches an engine (the SDK, and ``docker exec`` for the pty logins).
GRANTS = ("redir.e2e.su-grant", "redir.e2e.ssh-grant")


def _run_grants(env: dict[str, str], out: Path) -> subprocess.CompletedProcess[str]:
    cases = [arg for case in GRANTS for arg in ("--cases", case)]
    return subprocess.run(
        [sys.executable, "-m", "pamconform.cli", "module", str(ROOT / "modules" /
         "pam_redirector"), *cases, "--report", str(out), "--quiet"],
        env=env, capture_output=True, text=True, timeout=600, check=False)


def _created(host: str | None, since: str, until: str) -> set[str]:
    """The names of the containers created on an engine (None: the default) in a window."""
    where = ["-H", host] if host else []
    events = subprocess.run(
        ["docker", *where, "events", "--since", since, "--until", until, "--filter",
         "type=container", "--filter", "event=create", "--format",
         "{{.Actor.Attributes.name}}"], capture_output=True, text=True, timeout=60, check=False)
    assert events.returncode == 0, events.stderr
    return set(events.stdout.split())


def _assert_ran_on(engine: str, env: dict[str, str], out: Path) -> None:
    """Run the grants with ``env`` and check they passed, on ``engine`` only, leaving
    nothing behind there."""
    since = str(int(time.time()))
    proc = _run_grants(env, out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads((out / "index.json").read_text())
    assert {c["id"]: c["verdict"] for c in data["targets"][0]["cases"]} == dict.fromkeys(
        GRANTS, "PASS")
    until = str(int(time.time()) + 1)
    names = _created(engine, since, until)
    assert names, "the run created no container on the engine DOCKER_HOST names"
    # ... and none of them on the default engine (where other runs may be creating theirs)
    assert not names & _created(None, since, until)
    # the run cleaned up after itself on that engine
    left = _docker(engine, "ps", "-aq", "--filter", "label=pamconform=1")
    assert left.stdout.strip() == b""


def test_the_lab_runs_on_the_engine_docker_host_names(lab_engine, tmp_path) -> None:
    _assert_ran_on(lab_engine, dict(os.environ, DOCKER_HOST=lab_engine, PYTHONPATH=str(ROOT)),
                   tmp_path / "report")


# -- the same engine over ssh:// ----------------------------------------------------------
SSH_CONFIG = """\
Host *
  IdentityFile {key}
  IdentitiesOnly yes
  IdentityAgent none
  UserKnownHostsFile {known}
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking accept-new
  BatchMode yes
  ConnectTimeout 10
  ServerAliveInterval 5
  ServerAliveCountMax 3
  ControlMaster no
  LogLevel ERROR
"""

#: sshd's own options for the engine container: the lab image's drop-in allows no keys
#: and no root (command-line options win over the configuration files).
SSHD = ["/usr/sbin/sshd", "-D", "-e", "-o", "PubkeyAuthentication=yes", "-o",
        "PermitRootLogin=prohibit-password", "-o", "PasswordAuthentication=no", "-o",
        "KbdInteractiveAuthentication=no", "-o", "UsePAM=no", "-o", "AllowUsers=root"]


def _private_ssh(top: Path) -> dict[str, str]:
    """A key pair and an ``ssh`` first in PATH that reads only its own configuration;
    the environment to run pamconform with."""
    real_ssh, keygen = shutil.which("ssh"), shutil.which("ssh-keygen")
    if not real_ssh or not keygen:
        lab_unavailable("an ssh:// engine needs the ssh client and ssh-keygen")
    if importlib.util.find_spec("paramiko") is None:
        # not the lab: an optional dependency of the Docker SDK ('docker[ssh]'); see
        # test_an_ssh_engine_without_paramiko_is_one_line for what users get then
        pytest.skip("the Docker SDK needs paramiko for ssh:// (pip install 'docker[ssh]')")
    top.mkdir(mode=0o700)
    key = top / "id_ed25519"
    subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-C", "pamconform-test", "-f",
                    str(key)], check=True, capture_output=True, timeout=30)
    config = top / "config"
    config.write_text(SSH_CONFIG.format(key=key, known=top / "known_hosts"))
    config.chmod(0o600)
    bindir = top / "bin"
    bindir.mkdir()
    wrapper = bindir / "ssh"
    wrapper.write_text(f'#!/bin/sh\nexec {real_ssh} -F {config} "$@"\n')
    wrapper.chmod(0o700)
    return dict(os.environ, PATH=f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
                PYTHONPATH=str(ROOT))


@pytest.fixture(scope="module")
def ssh_engine(docker_client: object, lab_engine: str, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[tuple[str, dict[str, str], Any]]:
    """``(DOCKER_HOST, env, sshd container)`` reaching the second engine as
    ``ssh://root@127.0.0.1:PORT``: an sshd in a lab container of the default engine,
    published on loopback only. The container is always removed after."""
    from pamconform.lab import images
    from pamconform.lab.containers import LabContainer

    docker_cli = shutil.which("docker")
    assert docker_cli is not None
    top = tmp_path_factory.mktemp("ssh-engine") / "ssh"
    env = _private_ssh(top)
    image = images.ensure_lab_image(docker_client, images.find_root())  # type: ignore[arg-type]
    box = LabContainer.start(
        docker_client, image, name_prefix="pamconform-sshengine-",  # type: ignore[arg-type]
        network="bridge", hostname="remote-engine",
        ports={"22/tcp": ("127.0.0.1",)},  # a free port the engine picks, loopback only
        volumes={lab_engine.removeprefix("unix://"): {"bind": "/var/run/docker.sock",
                                                      "mode": "rw"},
                 os.path.realpath(docker_cli): {"bind": "/usr/bin/docker", "mode": "ro"}})
    try:
        box.put_file("/root/.ssh/authorized_keys", (top / "id_ed25519.pub").read_bytes(),
                     mode=0o600)
        box.run(["chmod", "0700", "/root/.ssh"], timeout=10).check()
        box.start_daemon(SSHD, log_path="/var/log/sshd.log")
        box.container.reload()
        bound = box.container.attrs["NetworkSettings"]["Ports"]["22/tcp"]
        assert {b["HostIp"] for b in bound} == {"127.0.0.1"}, bound
        port = int(bound[0]["HostPort"])
        deadline = time.monotonic() + 30
        while True:
            probe = subprocess.run(["ssh", "-p", str(port), "root@127.0.0.1",
                                    "docker version --format {{.Server.Version}}"],
                                   env=env, capture_output=True, text=True, timeout=30,
                                   check=False)
            if probe.returncode == 0:
                break
            assert time.monotonic() < deadline, (probe.stderr, box.run(
                ["cat", "/var/log/sshd.log"], timeout=10).out)
            time.sleep(0.3)
        yield f"ssh://root@127.0.0.1:{port}", env, box
    finally:
        box.remove()
    gone = subprocess.run(["docker", "ps", "-aq", "--filter", f"id={box.id}"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert gone.returncode == 0 and not gone.stdout.strip()


def _ssh_left(env: dict[str, str]) -> list[str]:
    """Command lines of ssh processes still using this test's private configuration."""
    mine = env["PATH"].split(os.pathsep)[0]
    config = str(Path(mine).parent / "config")
    left = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            argv = cmdline.read_bytes().split(b"\0")
            if config.encode() in argv:
                left.append(b" ".join(argv).decode(errors="replace"))
    return left


def test_the_lab_runs_on_an_ssh_engine(lab_engine, ssh_engine, tmp_path) -> None:
    docker_host, env, _sshd = ssh_engine
    _assert_ran_on(lab_engine, dict(env, DOCKER_HOST=docker_host), tmp_path / "report")
    assert not _ssh_left(env)


def test_an_ssh_engine_that_does_not_answer_is_one_line(tmp_path) -> None:
    env = _private_ssh(tmp_path / "ssh")
    # a port bound but not listening: connections to it are refused while it is held
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        proc = _run_grants(dict(env, DOCKER_HOST=f"ssh://root@127.0.0.1:{port}"),
                           tmp_path / "report")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    ours = [line for line in proc.stderr.splitlines() if line.startswith("pamconform")]
    assert len(ours) == 1 and "no Docker engine answers at ssh://" in ours[0], proc.stderr
    assert "ensure-engine" not in ours[0]  # no use for a remote engine
    assert not _ssh_left(env)


def test_an_ssh_engine_without_paramiko_is_one_line(tmp_path) -> None:
    # a paramiko that fails to import, as where it is not installed
    shadow = tmp_path / "shadow" / "paramiko"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError(\"No module named 'paramiko'\")\n")
    env = dict(os.environ, DOCKER_HOST="ssh://root@127.0.0.1:1",
               PYTHONPATH=os.pathsep.join((str(shadow.parent), str(ROOT))))
    proc = _run_grants(env, tmp_path / "report")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "docker[ssh]" in proc.stderr, proc.stderr


def test_lab_commands_over_ssh_read_stdin_and_keep_their_deadline(
        lab_engine, ssh_engine, monkeypatch) -> None:
    """Over ``ssh://`` the exec stream is the ssh command's pipes: stdin must end (the
    libpam agent reads its batch to EOF), and when the connection stalls (the sshd frozen
    mid-command) the client must still give up at its deadline."""
    from pamconform.lab import connect, images
    from pamconform.lab.containers import CLIENT_SLACK_S, KILL_GRACE_S, LabContainer

    docker_host, env, sshd = ssh_engine
    monkeypatch.setenv("PATH", env["PATH"])
    monkeypatch.setenv("DOCKER_HOST", docker_host)
    client = connect(timeout=30)
    try:
        with LabContainer.start(client, images.lab_image_tag(client, images.find_root()),
                                name_prefix="pamconform-sshexec-") as box:
            fed = box.run(["cat"], stdin=b"batch\n" * 1000, timeout=10)
            assert fed.ok and fed.stdout == b"batch\n" * 1000 and not fed.timed_out, fed
            stall = threading.Thread(target=_freeze_while, args=(sshd, lab_engine, box.name))
            stall.start()
            start = time.monotonic()
            try:
                stalled = box.run(["sleep", "2"], timeout=2)
                took = time.monotonic() - start
            finally:
                stall.join(timeout=60)
            assert stalled.timed_out and stalled.exit_code == -1, stalled
            assert took < 2 + KILL_GRACE_S + CLIENT_SLACK_S + 2.5, took
    finally:
        client.close()


def _freeze_while(sshd: Any, engine: str, name: str, seconds: float = 12.0) -> None:
    """Once ``sleep`` runs in the container ``name`` of ``engine``, freeze the sshd
    container (of the default engine) for ``seconds``."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and b"sleep 2" not in _docker(
            engine, "top", name, timeout=30).stdout:
        time.sleep(0.05)
    sshd.container.pause()
    try:
        time.sleep(seconds)
    finally:
        sshd.container.unpause()
