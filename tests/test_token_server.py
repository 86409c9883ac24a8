"""Self-tests of the reference token server: in-process through real sockets, and its CLI."""

from __future__ import annotations

import base64
import contextlib
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "fixtures"))
import faulty_token_servers
from stray_signal import run_with_stray_sigterm

ts = faulty_token_servers.load_reference_server()
SCRIPT = str(faulty_token_servers.REFERENCE_PATH)
ME = os.getuid()
PASS, FAIL = b"PASS\n\0", b"FAIL\n\0"


class Running:
    """A TokenServer serving in a thread; ``result`` is what serve() returned."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.result: bool | None = None
        server.listen()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.result = self.server.serve()

    @property
    def path(self) -> str:
        return str(self.server.socket_path)

    def join(self, timeout: float = 5.0) -> bool | None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the server did not finish"
        return self.result


@pytest.fixture
def serve(short_dir: Path) -> Iterator[Callable[..., Running]]:
    """Start in-process servers with fresh tokens; all closed after."""
    running: list[Running] = []

    def start(**options: Any) -> Running:
        options.setdefault("allow_uids", {ME})
        options.setdefault("idle_timeout", 1.0)
        options.setdefault("timeout", 5.0)
        token = ts.Token.fresh(ME, 1000 + len(running))
        server = ts.TokenServer(token, token.socket_path(str(short_dir)), **options)
        running.append(Running(server))
        return running[-1]

    yield start
    for r in running:
        r.server.close()


def ask(path: str, data: bytes, *, shutdown: bool = False, timeout: float = 3.0) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        with contextlib.suppress(OSError):
            s.sendall(data)
            if shutdown:
                s.shutdown(socket.SHUT_WR)
        out = b""
        with contextlib.suppress(OSError):
            while chunk := s.recv(64):
                out += chunk
        return out


# ------------------------------------------------------------------------ tokens


def test_token_format() -> None:
    token = ts.Token.fresh(1000, 4242)
    assert re.fullmatch(r"TTK1000:4242:[A-Za-z0-9+/]{32}", token.text)
    assert len(base64.b64decode(token.auth, validate=True)) == 24
    assert ts.Token.parse(token.text) == token
    assert token.socket_path() == "/tmp/transient-token-1000-4242"
    assert "<secret>" in token.public() and token.auth not in token.public()
    for bad in ("TTK01:2:" + "A" * 32, "TTK1:2:" + "A" * 31, "TTK1:2:" + "A" * 31 + "-",
                "ttk1:2:" + "A" * 32, "TTK+1:2:" + "A" * 32, "TTK1:0:" + "A" * 32):
        with pytest.raises(ValueError):
            ts.Token.parse(bad)
    assert len({ts.Token.fresh(1, 1).auth for _ in range(50)}) == 50


# ------------------------------------------------------------- one attempt, once


def test_exact_token_passes_once(serve: Callable[..., Running]) -> None:
    r = serve()
    st = os.lstat(r.path)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == ME
    assert ask(r.path, r.server.token.raw) == PASS
    assert r.join() is True
    assert not os.path.exists(r.path)
    with pytest.raises(FileNotFoundError):
        ask(r.path, r.server.token.raw)


@pytest.mark.parametrize("variant", [
    pytest.param(lambda t: t[:-1], id="prefix"),
    pytest.param(lambda t: t[:1], id="one-char"),
    pytest.param(lambda t: b"", id="empty"),
    pytest.param(lambda t: t + b"A", id="suffix"),
    pytest.param(lambda t: t + b"\0", id="nul"),
    pytest.param(lambda t: t + b"\n", id="newline"),
    pytest.param(lambda t: t[:11] + t[11:].swapcase(), id="case"),
    pytest.param(lambda t: t.lower(), id="lower"),
    pytest.param(lambda t: t.split(b":")[2], id="secret-only"),
])
def test_anything_but_the_token_fails_and_spends_it(
        serve: Callable[..., Running], variant: Callable[[bytes], bytes]) -> None:
    r = serve()
    data = variant(r.server.token.raw)
    assert data != r.server.token.raw
    assert ask(r.path, data, shutdown=True) == FAIL
    assert r.join() is False
    assert not os.path.exists(r.path)


def test_suffix_in_a_second_write_is_refused(serve: Callable[..., Running]) -> None:
    r = serve()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(3)
        s.connect(r.path)
        s.sendall(r.server.token.raw)
        s.sendall(b"A")
        assert s.recv(64) == FAIL
    assert r.join() is False


def test_token_split_across_writes_passes(serve: Callable[..., Running]) -> None:
    r = serve()
    raw = r.server.token.raw
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(3)
        s.connect(r.path)
        for part in (raw[:5], raw[5:20], raw[20:]):
            s.sendall(part)
            time.sleep(0.05)
        assert s.recv(64) == PASS


def test_silent_client_is_timed_out(serve: Callable[..., Running]) -> None:
    r = serve(idle_timeout=0.3)
    start = time.monotonic()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(3)
        s.connect(r.path)
        assert s.recv(64) == FAIL
    assert 0.25 < time.monotonic() - start < 2
    assert r.join() is False


def test_trickle_is_cut_off_by_one_deadline(serve: Callable[..., Running]) -> None:
    r = serve(idle_timeout=0.5)
    raw = r.server.token.raw
    got = b""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(3)
        s.connect(r.path)
        for i in range(len(raw)):
            with contextlib.suppress(OSError):
                s.sendall(raw[i : i + 1])
            time.sleep(0.03)
        with contextlib.suppress(OSError):
            got = s.recv(64)
    assert got in (FAIL, b"")
    assert r.join() is False


def test_read_is_bounded(serve: Callable[..., Running]) -> None:
    r = serve()
    assert ask(r.path, r.server.token.raw + b"A" * 100_000) in (FAIL, b"")
    assert r.join() is False


def test_peer_not_allowed_gets_fail_and_spends(serve: Callable[..., Running]) -> None:
    r = serve(allow_uids={ME + 1})
    assert ask(r.path, r.server.token.raw) == FAIL
    assert r.join() is False
    assert not os.path.exists(r.path)


def test_expires(serve: Callable[..., Running]) -> None:
    r = serve(timeout=0.3)
    assert r.join(3) is False
    assert not os.path.exists(r.path)


# -------------------------------------------------------------- safe creation


def test_refuses_what_is_already_at_the_path(short_dir: Path) -> None:
    token = ts.Token.fresh(ME, 77)
    path = token.socket_path(str(short_dir))
    Path(path).write_text("x")
    with pytest.raises(ts.TokenServerError, match="not a socket"):
        ts.TokenServer(token, path).listen()
    os.unlink(path)
    os.symlink(short_dir / "elsewhere", path)
    with pytest.raises(ts.TokenServerError, match="symbolic link"):
        ts.TokenServer(token, path).listen()
    os.unlink(path)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as live:
        live.bind(path)
        live.listen(1)
        with pytest.raises(ts.TokenServerError, match="another server"):
            ts.TokenServer(token, path).listen()
    # now a stale socket of our own uid: replaced
    with ts.TokenServer(token, path) as server:
        assert server.listener is not None
    assert not os.path.exists(path)


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_refuses_a_socket_of_another_uid(short_dir: Path) -> None:
    token = ts.Token.fresh(ME, 78)
    path = token.socket_path(str(short_dir))
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as planted:
        planted.bind(path)
    os.chown(path, 65534, 65534)
    with pytest.raises(ts.TokenServerError, match="owned by uid 65534"):
        ts.TokenServer(token, path).listen()


def test_refuses_a_world_writable_dir_without_sticky_bit(short_dir: Path) -> None:
    os.chmod(short_dir, 0o777)
    token = ts.Token.fresh(ME, 79)
    with pytest.raises(ts.TokenServerError, match="sticky"):
        ts.TokenServer(token, token.socket_path(str(short_dir))).listen()
    os.chmod(short_dir, 0o1777)
    with ts.TokenServer(token, token.socket_path(str(short_dir))):
        pass


# ------------------------------------------------------------------------- CLI


def _cli(*args: str, timeout: float = 10) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True,
                          timeout=timeout, check=False, stdin=subprocess.DEVNULL)


def test_cli_daemon_prints_token_and_serves_in_background(short_dir: Path) -> None:
    log = short_dir / "log"
    start = time.monotonic()
    done = _cli("--socket-dir", str(short_dir), "--timeout", "5", "--allow-uid", str(ME),
                "--log", str(log))
    assert done.returncode == 0 and done.stderr == "", done
    assert time.monotonic() - start < 5  # returned although the server still waits
    token = ts.Token.parse(done.stdout.strip())
    path = token.socket_path(str(short_dir))
    assert token.uid == ME and os.path.exists(path)
    status = Path(f"/proc/{token.pid}/status").read_text()
    assert f"PPid:\t{os.getpid()}" not in status  # detached (double fork)
    assert ask(path, token.raw) == PASS
    deadline = time.monotonic() + 3
    while os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not os.path.exists(path)
    text = log.read_text()
    assert "token accepted" in text and token.auth not in text


def test_cli_daemon_removes_socket_on_sigterm(short_dir: Path) -> None:
    done = _cli("--socket-dir", str(short_dir), "--timeout", "5")
    token = ts.Token.parse(done.stdout.strip())
    path = token.socket_path(str(short_dir))
    assert os.path.exists(path)
    os.kill(token.pid, signal.SIGTERM)
    deadline = time.monotonic() + 3
    while os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not os.path.exists(path)


def test_cli_foreground_and_socket_override(short_dir: Path) -> None:
    path = short_dir / "fixed.sock"
    proc = subprocess.Popen([sys.executable, SCRIPT, "--foreground", "--socket", str(path),
                             "--timeout", "5", "--allow-uid", str(ME)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        token = ts.Token.parse(proc.stdout.readline().strip())
        assert token.pid == proc.pid and path.exists()
        assert ask(str(path), token.raw + b"x") == FAIL
        assert proc.wait(timeout=30) == 1
        assert not path.exists()
        assert proc.stderr is not None and token.auth not in proc.stderr.read()
    finally:
        proc.kill()
        proc.wait(timeout=5)


def test_cli_errors_are_one_line(short_dir: Path) -> None:
    missing = _cli("--socket-dir", str(short_dir / "nope"))
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr.count("\n") == 1 and "nope" in missing.stderr
    bad = _cli("--timeout", "-1")
    assert bad.returncode == 2 and "--timeout" in bad.stderr
    assert _cli("--help").returncode == 0


def test_a_stop_signal_that_misses_the_wait_still_stops_the_server(short_dir: Path) -> None:
    """A SIGTERM that does not interrupt the wait for a connection (see stray_signal)
    must still stop a server with no expiry within its poll bound."""
    setup = (
        "import os\n"
        "import faulty_token_servers\n"
        "ts = faulty_token_servers.load_reference_server()\n"
        "token = ts.Token.fresh(os.getuid(), 4242)\n"
        f"WATCHED = token.socket_path({str(short_dir)!r})\n"
        "server = ts.TokenServer(token, WATCHED, timeout=None, allow_uids={os.getuid()},\n"
        "                        log=ts.configure_logging())\n")
    env = {**os.environ, "PYTHONPATH": str(Path(faulty_token_servers.__file__).parent)}
    status, err = run_with_stray_sigterm(setup, "ts.run_server(server)", env=env)
    assert status == 1, err.decode(errors="replace")  # 1: the token was not used
    assert b"terminated by SIGTERM" in err
    assert not list(short_dir.iterdir())
