"""Self-tests of the scenario server: every scenario seen through a raw socket client."""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest

from pamconform.lab.scenario_control import (
    ScenarioControl,
    ScenarioControlError,
    ScenarioProcess,
    scenario_server_script,
)

REQUEST = b"alice\npw\n"
ME = os.getuid()
#: Run as another uid, so it must not live under /root.
SYSTEM_PYTHON = "/usr/bin/python3"
#: The malformed replies the module suite uses (see the scenario server's docstring).
MALFORMED = {
    "empty": b"",
    "double-zero": b"00",
    "space-zero": b" 0",
    "zero-x": b"0x",
    "minus-zero": b"-0",
    "plus-zero": b"+0",
    "zero-crlf": b"0\r\n",
    "zero-nul": b"0\0",
    "one": b"1",
    "two": b"2",
    "minus-one": b"-1",
    "pass": b"PASS",
    "4k-digits": b"0" + b"1234567890" * 410,
    "binary-64": bytes(range(256))[::4],
}


@dataclass
class Running:
    auth: Path
    control: ScenarioControl
    proc: subprocess.Popen[bytes]
    control_path: Path


StartServer = Callable[..., Running]


def _read_ready(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> dict[str, object]:
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            raise AssertionError("scenario server printed no ready line")
    line = proc.stdout.readline()
    ready = json.loads(line)
    assert ready["ready"] is True, ready
    return ready


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


@pytest.fixture
def start_server(short_dir: Path) -> Iterator[StartServer]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(*extra: str) -> Running:
        auth, ctl = short_dir / f"a{len(procs)}", short_dir / f"c{len(procs)}"
        proc = subprocess.Popen(
            [sys.executable, str(scenario_server_script()), str(auth), "--control", str(ctl),
             *extra],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        procs.append(proc)
        _read_ready(proc)
        return Running(auth, ScenarioControl(ctl, timeout=5), proc, ctl)

    try:
        yield start
    finally:
        for proc in procs:
            _stop(proc)


@pytest.fixture
def server(start_server: StartServer) -> Running:
    return start_server()


def connect(path: Path, timeout: float = 3.0) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.connect(str(path))
    return sock


def read_to_eof(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def exchange(path: Path, request: bytes = REQUEST, timeout: float = 3.0) -> tuple[bytes, float]:
    """Send ``request``, read to EOF; return the reply and how long it took."""
    with connect(path, timeout) as sock:
        start = time.monotonic()
        sock.sendall(request)
        reply = read_to_eof(sock)
        return reply, time.monotonic() - start


def only_record(control: ScenarioControl, wait: float = 10.0) -> dict[str, object]:
    # log() returns at once while nothing is open, and under load the server may not have
    # accepted the client yet: ask again until a record shows up or ``wait`` runs out.
    deadline = time.monotonic() + wait
    log = control.log(wait=wait)
    while not log and time.monotonic() < deadline:
        time.sleep(0.05)
        log = control.log(wait=max(0.0, deadline - time.monotonic()))
    assert len(log) == 1, log
    return log[0]


# --------------------------------------------------------------------------- scenarios


@pytest.mark.parametrize(("scenario", "reply"), [("grant", b"0"), ("deny", b"1"),
                                                 ("echo-peer", b"1")])
def test_reply_scenarios(server: Running, scenario: str, reply: bytes) -> None:
    server.control.set(scenario)
    assert exchange(server.auth)[0] == reply
    record = only_record(server.control)
    assert record["received_hex"] == REQUEST.hex()
    assert record["sent_hex"] == reply.hex()
    assert record["closed_by"] == "server"
    assert record["peer_uid"] == ME
    assert record["scenario"] == scenario


def test_grant_frames_a_request_split_bytewise(server: Running) -> None:
    with connect(server.auth) as sock:
        for i in range(len(REQUEST)):
            sock.sendall(REQUEST[i:i + 1])
            time.sleep(0.005)
        assert read_to_eof(sock) == b"0"


def test_close_before_read(server: Running) -> None:
    server.control.set("close-before-read")
    with connect(server.auth) as sock:
        assert read_to_eof(sock) == b""
    record = only_record(server.control)
    assert record["received_hex"] == ""
    assert record["closed_by"] == "server"


def test_close_after_request(server: Running) -> None:
    server.control.set("close-after-request")
    assert exchange(server.auth)[0] == b""
    assert only_record(server.control)["received_hex"] == REQUEST.hex()


def test_reply_before_request(server: Running) -> None:
    server.control.set("reply-before-request")
    with connect(server.auth) as sock:
        assert sock.recv(16) == b"0"  # before anything was sent
        sock.sendall(REQUEST)
        assert read_to_eof(sock) == b""
    assert only_record(server.control)["received_hex"] == REQUEST.hex()


def test_partial_reply(server: Running) -> None:
    server.control.set("partial-reply")
    with connect(server.auth) as sock:
        sock.sendall(REQUEST)
        assert sock.recv(16) == b"1"
        start = time.monotonic()
        rest = read_to_eof(sock)
        assert rest == b"0"
        assert 0.1 < time.monotonic() - start < 1.0


@pytest.mark.parametrize("reply", list(MALFORMED.values()), ids=list(MALFORMED))
def test_malformed(server: Running, reply: bytes) -> None:
    server.control.set("malformed", reply=reply.hex())
    assert exchange(server.auth)[0] == reply


def test_two_replies(server: Running) -> None:
    server.control.set("two-replies")
    assert exchange(server.auth)[0] == b"00"
    assert only_record(server.control)["sent_hex"] == "3030"


def test_a_client_that_shuts_its_write_side_still_gets_the_play(server: Running) -> None:
    """A module that half-closes after its request is waiting for the reply: two replies
    are both sent, and silence stays silent (it must not look like a server that closed)."""
    server.control.set("two-replies")
    with connect(server.auth) as sock:
        sock.sendall(REQUEST)
        sock.shutdown(socket.SHUT_WR)
        assert read_to_eof(sock) == b"00"
    assert only_record(server.control)["client_shut_write"] is True
    server.control.set("silence")
    with connect(server.auth, timeout=1.0) as sock:
        sock.sendall(REQUEST)
        sock.shutdown(socket.SHUT_WR)
        with pytest.raises(TimeoutError):
            sock.recv(1)  # no end of stream: the server still holds the connection
    record = only_record(server.control, wait=10)
    assert record["closed_by"] == "client" and record["sent_hex"] == ""


def test_delay(server: Running) -> None:
    server.control.set("delay", seconds=0.4)
    reply, took = exchange(server.auth)
    assert reply == b"0"
    assert 0.35 < took < 2.0


def test_delay_notices_a_client_that_left(server: Running) -> None:
    server.control.set("delay", seconds=30)
    with connect(server.auth) as sock:
        sock.sendall(REQUEST)
    record = only_record(server.control, wait=10)
    assert record["closed_by"] == "client"
    assert record["sent_hex"] == ""


def test_silence_until_the_client_leaves(server: Running) -> None:
    server.control.set("silence")
    sock = connect(server.auth, timeout=0.5)
    try:
        sock.sendall(REQUEST + b"more")
        with pytest.raises(TimeoutError):
            sock.recv(16)
        open_record = only_record(server.control, wait=0)
        assert open_record["closed_by"] is None
        assert server.control.ping()["open"] == 1
    finally:
        sock.close()
    record = only_record(server.control, wait=10)
    assert record["closed_by"] == "client"
    assert record["received_hex"] == (REQUEST + b"more").hex()
    assert server.control.log() == []  # finished records are cleared


def test_reset(server: Running) -> None:
    server.control.set("reset")
    with connect(server.auth) as sock:
        sock.sendall(REQUEST)
        with pytest.raises(ConnectionResetError):
            read_to_eof(sock)
    assert only_record(server.control)["received_hex"] == REQUEST.hex()


def test_accept_no_read(server: Running) -> None:
    server.control.set("accept-no-read")
    sock = connect(server.auth, timeout=0.4)
    try:
        sock.sendall(REQUEST)
        with pytest.raises(TimeoutError):
            sock.recv(16)
    finally:
        sock.close()
    record = only_record(server.control, wait=10)
    assert record["closed_by"] == "client"
    assert record["received_hex"] == REQUEST.hex()  # queued, never read: peeked at close


@pytest.mark.skipif(ME != 0, reason="connecting as another uid needs root")
@pytest.mark.skipif(not os.access(SYSTEM_PYTHON, os.X_OK), reason=f"no {SYSTEM_PYTHON}")
def test_echo_peer_records_another_uid(start_server: StartServer, short_dir: Path) -> None:
    running = start_server("--mode", "0666", "--scenario", "echo-peer")
    short_dir.chmod(0o711)
    code = (f"import socket; s = socket.socket(socket.AF_UNIX); s.settimeout(3); "
            f"s.connect({str(running.auth)!r}); s.sendall(b'x\\ny\\n'); print(s.recv(4))")
    out = subprocess.run([SYSTEM_PYTHON, "-I", "-c", code], user=65534, cwd="/",
                         capture_output=True, timeout=10, check=True)
    assert out.stdout.strip() == b"b'1'"
    assert only_record(running.control)["peer_uid"] == 65534


# --------------------------------------------------------------------------- control


def test_scenario_is_sticky_and_counted(server: Running) -> None:
    server.control.set("deny")
    assert [exchange(server.auth)[0] for _ in range(3)] == [b"1"] * 3
    log = server.control.log(wait=10)
    assert [r["conn"] for r in log] == [1, 2, 3]
    ping = server.control.ping()
    assert ping["scenario"] == "deny"
    assert ping["open"] == 0


@pytest.mark.parametrize(("name", "args", "message"), [
    ("nonsense", {}, "unknown scenario"),
    ("delay", {}, "missing argument: seconds"),
    ("delay", {"seconds": 500}, "between 0 and 120"),
    ("malformed", {"reply": "zz"}, "bad argument reply"),
    ("grant", {"extra": 1}, "unknown argument"),
])
def test_bad_set_is_refused(server: Running, name: str, args: dict[str, object],
                            message: str) -> None:
    with pytest.raises(ScenarioControlError, match=message):
        server.control.set(name, **args)
    assert server.control.ping()["scenario"] == "grant"


def test_bad_control_lines(server: Running) -> None:
    for line, message in ((b"not json\n", "bad JSON"), (b"[1]\n", "JSON object"),
                          (b'{"op": "dance"}\n', "unknown op"),
                          (b'{"op": "ping", "x": ' + b"[" * 200_000 + b"\n", "bad JSON")):
        with connect(server.control_path) as sock:
            sock.sendall(line)
            reply = json.loads(sock.makefile("rb").readline())
        assert reply["ok"] is False and message in reply["error"]


def test_sockets_are_private_and_unlinked_on_sigterm(server: Running) -> None:
    assert server.auth.stat().st_mode & 0o777 == 0o600
    assert server.control_path.stat().st_mode & 0o777 == 0o600
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(5) == 0
    assert not server.auth.exists()
    assert not server.control_path.exists()


def test_sigterm_with_connections_held(server: Running) -> None:
    server.control.set("accept-no-read")
    sock = connect(server.auth)
    try:
        time.sleep(0.1)
        start = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(5) == 0
        assert time.monotonic() - start < 3
        assert read_to_eof(sock) == b""
    finally:
        sock.close()


def test_refuses_a_live_socket_and_replaces_a_stale_one(start_server: StartServer,
                                                        short_dir: Path) -> None:
    running = start_server()
    clash = subprocess.run(
        [sys.executable, str(scenario_server_script()), str(running.auth), "--control",
         str(short_dir / "other")], capture_output=True, timeout=15, check=False)
    assert clash.returncode == 2
    assert b"already listening" in clash.stderr
    stale = short_dir / "stale"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as leftover:
        leftover.bind(str(stale))
    with ScenarioProcess.local(stale) as proc:
        assert exchange(stale)[0] == b"0"
        proc.log(wait=1)


def test_a_live_socket_with_a_full_backlog_is_not_taken_for_a_stale_one(
        short_dir: Path) -> None:
    path = short_dir / "live"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as live:
        live.bind(str(path))
        live.listen(0)
        queued = []
        for _ in range(5):  # fill the backlog: a probe connect then fails with EAGAIN
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.setblocking(False)
            queued.append(c)
            try:
                c.connect(str(path))
            except BlockingIOError:
                break
        inode = os.lstat(path).st_ino
        try:
            clash = subprocess.run(
                [sys.executable, str(scenario_server_script()), str(path), "--control",
                 str(short_dir / "ctl")], capture_output=True, timeout=15, check=False)
        finally:
            for c in queued:
                c.close()
        assert clash.returncode == 2, clash.stderr
        assert b"not removing it" in clash.stderr
        assert os.lstat(path).st_ino == inode


def test_stdin_control_mode(short_dir: Path) -> None:
    auth = short_dir / "s"
    with ScenarioProcess.local(auth, scenario="deny") as proc:
        assert proc.auth_path == str(auth)
        assert proc.ping()["scenario"] == "deny"
        assert exchange(auth)[0] == b"1"
        proc.set("malformed", reply="2020")
        assert exchange(auth)[0] == b"  "
        log = proc.log(wait=10)
        assert [r["scenario"] for r in log] == ["deny", "malformed"]
        with pytest.raises(ScenarioControlError, match="unknown scenario"):
            proc.set("nope")
        err = proc.stop()
        assert proc.proc.returncode == 0, err
    assert not auth.exists()


_SLOW_CONTROL = (
    "import json, sys, time\n"
    "print(json.dumps({'ok': True, 'ready': True, 'auth': '/nowhere'}), flush=True)\n"
    "for n, line in enumerate(sys.stdin):\n"
    "    time.sleep(1.0)\n"
    "    print(json.dumps({'ok': True, 'log': [], 'n': n}), flush=True)\n")


def test_a_control_reply_that_comes_late_is_never_taken_for_the_next_one() -> None:
    """After a reply timeout the process is stopped: its late reply would otherwise answer
    the next request (a stale "ok", or a log with no records)."""
    proc = ScenarioProcess([sys.executable, "-c", _SLOW_CONTROL], timeout=0.3)
    try:
        with pytest.raises(ScenarioControlError, match="no reply within"):
            proc.set("grant")
        assert proc.proc.poll() is not None  # stopped: whoever needs one starts another
        with pytest.raises(ScenarioControlError):
            proc.log()
    finally:
        proc.stop()


def test_a_connection_with_no_thread_to_serve_it_is_closed_not_the_accept_loop(
        short_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When no thread can be started for a connection, the connection is closed at once
    (recorded as an overflow) and accepting goes on; the error does not end the loop."""
    from pamconform.core.loader import import_path

    mod = import_path("pamconform_scenario_server_t", scenario_server_script())
    server = mod.ScenarioServer(str(short_dir / "auth"), "-")
    server.auth_sock = server._listen(server.auth_path, 0o600)
    server.auth_sock.setblocking(False)

    class NoThread:
        def __init__(self, *args: object, **kwargs: object) -> None:
            pass

        def is_alive(self) -> bool:
            return False

        def start(self) -> None:
            raise RuntimeError("can't start new thread")

    # the module's threading, but for Thread
    monkeypatch.setattr(mod, "threading",
                        SimpleNamespace(**{**vars(mod.threading), "Thread": NoThread}))
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(5)
            client.connect(server.auth_path)
            server._accept()  # must not raise
            assert client.recv(16) == b""  # closed before reading
        assert [c.overflow for c in server.conns] == [True]
    finally:
        server.auth_sock.close()
        os.unlink(server.auth_path)
