"""The Docker lab: engine, images, containers, and the module inside the lab image.

All tests here need a Docker engine and skip (with the reason) when none answers; run
``containers/ensure-engine.sh`` first. The first run builds the lab image (a few minutes);
later runs reuse it. ``PAMCONFORM_LAB_BASE=debian:bookworm-slim`` picks another base.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pamconform.lab import (
    LABEL,
    RUN_LABEL,
    LabContainer,
    LabSession,
    cleanup_stale,
    containers,
    ensure_lab_image,
)
from pamconform.lab.containers import (
    CHANNEL_ENV,
    OWNER_LABEL,
    docker_exec_argv,
    labelled,
    new_run_id,
)
from pamconform.lab.host import lab_host

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[1]
MODULE = "/lib/x86_64-linux-gnu/security/pam_redirector.so"
SOCKET = "/run/pam_redirector/socket"
SERVICE = "pamconform-labtest"
NEEDED = ("modules/pam_redirector/Makefile", "servers/redirector_server.py")


@pytest.fixture(scope="module")
def client(docker_client: object) -> object:
    return docker_client


@pytest.fixture(scope="module")
def lab_image(client) -> str:
    missing = [p for p in NEEDED if not (ROOT / p).exists()]
    if missing:
        pytest.skip(f"lab image inputs missing: {', '.join(missing)}")
    return ensure_lab_image(
        client, ROOT, base=os.environ.get("PAMCONFORM_LAB_BASE"), progress=lambda _line: None
    )


@pytest.fixture(scope="module")
def session(client) -> Iterator[LabSession]:
    with LabSession(client) as s:
        yield s


@pytest.fixture(scope="module")
def box(session: LabSession, lab_image: str) -> LabContainer:
    return session.container(lab_image)


@pytest.fixture(scope="module")
def server(box: LabContainer) -> str:
    """The reference server running in the lab container, and a pamtester service."""
    box.put_file(
        f"/etc/pam.d/{SERVICE}",
        f"auth required pam_redirector.so {SOCKET} timeout=3\n"
        "account required pam_permit.so\n".encode(),
        0o644,
    )
    started = box.run(["pamconform-start-server", SOCKET], timeout=15)
    assert started.ok, started.err
    return SOCKET


def test_engine_connect(client) -> None:
    assert client.ping()
    assert client.version()["ApiVersion"]


def test_lab_image_is_cached(client, lab_image: str) -> None:
    start = time.monotonic()
    again = ensure_lab_image(
        client, ROOT, base=os.environ.get("PAMCONFORM_LAB_BASE"), progress=lambda _line: None
    )
    assert again == lab_image
    assert time.monotonic() - start < 5
    labels = client.images.get(lab_image).labels
    assert labels.get(LABEL) == "1"


def test_container_has_no_network(box: LabContainer) -> None:
    links = box.run(["ip", "-o", "link"], timeout=10).check().out.splitlines()
    names = [line.split(":")[1].strip().split("@")[0] for line in links]
    assert names == ["lo"]
    assert box.container.labels[LABEL] == "1"
    assert box.container.labels[RUN_LABEL] == box.run_id


def test_exec_timeout_returns_promptly(box: LabContainer) -> None:
    start = time.monotonic()
    result = box.run(["sleep", "100"], timeout=2)
    elapsed = time.monotonic() - start
    assert result.timed_out
    assert not result.ok
    assert elapsed < 5, elapsed


#: Commands whose result must be the same through the channel and through docker exec.
SAME_EITHER_WAY = [
    (["sh", "-c", "cat; echo oops >&2; exit 7"], 10, b"a\nb\n"),
    (["sleep", "100"], 1, None),
    (["sh", "-c", "trap '' TERM; sleep 100"], 1, None),
    (["sh", "-c", "kill -SEGV $$"], 5, None),
    (["sh", "-c", "sleep 30 & echo started"], 1, None),
    (["pc-no-such-command"], 5, None),
]


def test_the_channel_gives_what_docker_exec_gives(
        session: LabSession, lab_image: str, monkeypatch: pytest.MonkeyPatch) -> None:
    results = {}
    for env in ("1", "0"):
        monkeypatch.setenv(CHANNEL_ENV, env)
        box = session.container(lab_image)
        try:
            assert (box.channel() is None) is (env == "0"), box.channel_off
            results[env] = [box.run(argv, timeout=t, stdin=data) for argv, t, data in
                            SAME_EITHER_WAY]
            results[env].append(box.run('echo "$PC_X"; pwd', timeout=5, workdir="/tmp",
                                        environment={"PC_X": "y"}))
            box.put_file("/run/pc-f/x", b"\x00data", 0o4750, owner="nobody")
            results[env].append(box.run(["stat", "-c", "%a %U %G", "/run/pc-f/x"], timeout=5))
            assert box.get_file("/run/pc-f/x") == b"\x00data"
            with pytest.raises(FileNotFoundError):
                box.get_file("/run/pc-f/none")
            # the channel was in use to the end, not dropped for exec part way
            assert (box.channel() is None) is (env == "0"), box.channel_off
        finally:
            box.remove()
    for (argv, _t, _data), channel, exec_ in zip([*SAME_EITHER_WAY, (["env"], 0, None),
                                                  (["stat"], 0, None)],
                                                 results["1"], results["0"], strict=True):
        assert (channel.exit_code, channel.stdout, channel.stderr, channel.timed_out) == \
            (exec_.exit_code, exec_.stdout, exec_.stderr, exec_.timed_out), argv
        # never slower (an exec may wait 2 s for output after its process ended)
        assert channel.duration_s < exec_.duration_s + 1.0, (argv, channel, exec_)


def test_without_a_channel_commands_go_by_exec(
        session: LabSession, lab_image: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CHANNEL_ENV, raising=False)
    monkeypatch.setattr(containers, "SERVER_PATH", "/proc/no-such-dir/channel.py")
    box = session.container(lab_image)
    try:
        assert box.channel() is None and str(box.channel_off).startswith("no channel:")
        assert box.run(["echo", "ok"], timeout=5).out == "ok\n"
    finally:
        box.remove()


def test_a_channel_that_closes_under_a_command_does_not_run_it_again(
        session: LabSession, lab_image: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CHANNEL_ENV, raising=False)
    box = session.container(lab_image)
    try:
        assert box.channel() is not None
        # a command through the channel that ends the channel's server
        killer = threading.Timer(1.0, lambda: box.run(
            ["pkill", "-f", "pamconform-channel.py"], timeout=5))
        killer.start()
        cut = box.run(["sh", "-c", "echo once >> /tmp/pc-ran; sleep 5"], timeout=10)
        killer.join(15)
        assert cut.exit_code == -1 and b"channel" in cut.stderr, cut
        assert box.channel() is None and "closed" in str(box.channel_off)
        # the next command goes by exec, and the cut one ran once
        assert box.run(["cat", "/tmp/pc-ran"], timeout=5).out == "once\n"
    finally:
        box.remove()


def test_exec_streams_stdin_and_exit_code(box: LabContainer) -> None:
    result = box.run("cat; echo oops >&2; exit 7", timeout=10, stdin=b"a\nb\n")
    assert (result.exit_code, result.stdout, result.stderr) == (7, b"a\nb\n", b"oops\n")
    assert not result.timed_out
    assert box.run(["id", "-un"], user="mallory", timeout=10).out == "mallory\n"


def test_script_values_are_arguments_never_spliced(box: LabContainer) -> None:
    """A value with quotes, spaces and $(...) reaches the script as one word, unexpanded."""
    nasty = "/tmp/pc test/it's $(touch /tmp/pc-pwned) `id`; rm -rf /"
    result = box.run('printf %s "$1" > /tmp/pc-arg && cat /tmp/pc-arg', args=[nasty],
                     timeout=10).check()
    assert result.out == nasty
    assert box.run(["test", "-e", "/tmp/pc-pwned"], timeout=5).exit_code == 1
    with pytest.raises(ValueError):
        box.run(["true"], args=["x"], timeout=5)


def test_exec_argv_runs_in_the_container_bounded(box: LabContainer) -> None:
    argv = box.exec_argv(["id", "-un"], user="mallory", timeout=10)
    assert argv[:3] == ["docker", "exec", "-i"] and box.id in argv
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    assert (done.returncode, done.stdout) == (0, "mallory\n")
    start = time.monotonic()
    slow = subprocess.run(box.exec_argv(["sleep", "100"], timeout=1), capture_output=True,
                          timeout=30, check=False)
    assert slow.returncode == 124 and time.monotonic() - start < 10


def test_pty_login_argv_keeps_the_terminal() -> None:
    """A pty command stays in the terminal's foreground group (it must read prompts)."""
    argv = docker_exec_argv("c1", ["su", "bob"], user="mallory", tty=True, timeout=20)
    assert argv == ["docker", "exec", "-it", "-u", "mallory", "c1",
                    "timeout", "--foreground", "-k", "2", "20", "su", "bob"]
    assert docker_exec_argv("c1", "echo $1", args=["x y"], timeout=None) == [
        "docker", "exec", "-i", "c1", "sh", "-c", "echo $1", "sh", "x y"]


def test_put_file_mode_and_owner(box: LabContainer) -> None:
    box.put_file("/tmp/pc-test/dir/f", b"x\0y", 0o640, "alice")
    stat = box.run(["stat", "-c", "%U %a %s", "/tmp/pc-test/dir/f"], timeout=10).check()
    assert stat.out.split() == ["alice", "640", "3"]
    assert box.get_file("/tmp/pc-test/dir/f") == b"x\0y"


def test_cleanup_stale_removes_labelled(client, lab_image: str, box: LabContainer) -> None:
    run_id = new_run_id()
    gone = subprocess.Popen(["true"])
    gone.wait()
    host = socket.gethostname()
    dead = LabContainer.start(
        client, lab_image, run_id=run_id, keep=True, labels={OWNER_LABEL: f"{host}:{gone.pid}"}
    )
    # A container owned by a live process (pid 1) survives a "spare live runs" cleanup.
    live = LabContainer.start(
        client, lab_image, run_id=run_id, keep=True, labels={OWNER_LABEL: f"{host}:1"}
    )
    net = client.networks.create(
        f"pamconform-{run_id}-net", labels={LABEL: "1", RUN_LABEL: run_id}, internal=True
    )
    try:
        # Another xdist worker's session may clean up the dead container first: assert what
        # is left, not how many this call removed.
        cleanup_stale(client, spare_live_runs=True)
        assert not box.removed and box.container.reload() is None  # our run is spared
        names = {c.name for c in labelled(client, run_id)}
        assert names == {live.name}
        assert cleanup_stale(client, run_id) == 1
        assert list(labelled(client, run_id)) == []
        assert client.networks.list(names=[net.name]) == []
    finally:
        for extra in (dead, live):
            extra.remove()


def test_session_cleans_up_on_sigterm(client, lab_image: str) -> None:
    child = textwrap.dedent(
        f"""
        import sys, time
        from pamconform.lab import LabSession, connect
        with LabSession(connect(), clean_start=False) as s:
            s.container({lab_image!r})
            print(s.run_id, flush=True)
            time.sleep(60)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", child],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    try:
        assert proc.stdout is not None
        run_id = proc.stdout.readline().strip()
        assert run_id and list(labelled(client, run_id))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == -signal.SIGTERM
        assert list(labelled(client, run_id)) == []
    finally:
        proc.kill()
        proc.wait()


def test_sshd_config_valid(box: LabContainer) -> None:
    result = box.run(["sshd", "-t"], timeout=20)
    assert result.ok, result.err
    conf = box.run(["sshd", "-T"], timeout=20).check().out
    for line in ("usepam yes", "kbdinteractiveauthentication yes", "passwordauthentication yes"):
        assert line in conf.splitlines()


def test_sshd_starts_and_listens(box: LabContainer) -> None:
    box.run(["pamconform-start-sshd"], timeout=20).check()
    assert box.wait_for("ss -Hltn | grep -q ':22 '", timeout=10)


def test_module_installed_safely(box: LabContainer) -> None:
    host = lab_host(box)
    module = host.file(MODULE)
    assert module.exists and module.is_file
    assert (module.user, module.group) == ("root", "root")
    assert module.mode & 0o022 == 0
    creds = host.file("/etc/pam_redirector/credentials")
    assert (creds.user, creds.mode) == ("root", 0o600)
    assert host.file("/run/pam_redirector").mode == 0o700
    assert host.user("alice").exists and host.user("mallory").exists
    assert host.package("pamtester").is_installed
    # No 2 s pam_unix failure delay in the shared stack.
    assert host.file("/etc/pam.d/common-auth").contains("pam_unix.so.*nodelay")
    assert host.run("exit 3").rc == 3


def test_testinfra_commands_are_bounded(box: LabContainer) -> None:
    start = time.monotonic()
    assert lab_host(box, timeout=1).run("sleep 100").rc == 124
    assert time.monotonic() - start < 10


def _pamtester(box: LabContainer, user: str, password: str) -> int:
    result = box.run(
        ["pamtester", SERVICE, user, "authenticate"],
        stdin=password.encode() + b"\n",
        timeout=15,
    )
    assert not result.timed_out, result
    return result.exit_code


def test_pamtester_through_module(box: LabContainer, server: str) -> None:
    assert _pamtester(box, "alice", "alice-auth-pw") == 0
    assert _pamtester(box, "bob", "bob-auth-pw") == 0
    assert _pamtester(box, "bob", "wrong-password") != 0
    # The module, not pam_unix, decides: the Unix password is not the auth-server one.
    assert _pamtester(box, "alice", "unix-alice-pw") != 0
