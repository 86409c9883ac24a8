"""The reference redirector server's hardening: logs, framing, credentials file, costs,
refused peers (issue "Trust")."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import test_redirector_server as base

from pamconform.drivers.peer import connect_as

rs, SCRIPT, FAST_N, ME = base.rs, base.SCRIPT, base.FAST_N, base.ME
ask, connect, read_all = base.ask, base.connect, base.read_all  # the same client helpers
make_server, store = base.make_server, base.store  # the same server fixtures
NOBODY = 65534
SIOCOUTQ = 0x5411
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chown, another uid)")


class Lines(logging.Handler):
    """Collects formatted log lines."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def lines() -> Iterator[Lines]:
    handler = Lines()
    log = logging.getLogger("test-reference-server")
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO)
    log.propagate = False
    yield handler
    log.handlers[:] = []


@pytest.fixture
def serve(make_server: Callable[..., Any], lines: Lines) -> Callable[..., Any]:
    """A reference server (users of test_redirector_server) logging to ``lines``."""

    def start(**options: Any) -> Any:
        options.setdefault("idle_timeout", 3.0)
        return make_server(log=logging.getLogger("test-reference-server"), **options)

    return start


# -- logs never hold a password -----------------------------------------------------


@pytest.mark.parametrize(
    ("user", "clear"),
    [
        (b"alice", True),
        (b"j.doe@example.org", True),
        ("zoë".encode(), True),
        (b"a" * 32, True),
        (b"a" * 33, False),
        (b"alice s3cret", False),
        (b"alice\ts3cret", False),
        (b"alice\x1b[31m", False),
        (b"alice\x7f", False),
        ("alice\u202e".encode(), False),  # a bidi override is not printable
        ("alice\u00a0pw".encode(), False),  # a no-break space is whitespace
        (b'al"ice', False),
        (b"al\\ice", False),
        (b"\xff\xfe", False),
    ],
)
def test_log_user_is_clear_only_for_short_plain_names(user: bytes, clear: bool) -> None:
    shown = rs.log_user(user)
    if clear:
        assert shown == '"' + user.decode() + '"'
    else:
        assert shown.startswith("hmac:") and len(shown) == len("hmac:") + 8
        assert shown == rs.log_user(user)  # the same field gives the same digest
        assert shown != rs.log_user(user + b"x")


def test_digest_is_keyed_not_a_plain_hash() -> None:
    shown = rs.log_user(b"alice s3cret")
    assert shown[5:] != hashlib.sha256(b"alice s3cret").hexdigest()[:8]


def test_misframed_request_does_not_log_the_password(serve: Callable[..., Any],
                                                     lines: Lines) -> None:
    server = serve()
    assert ask(server.socket_path, b"alice s3cret\n", shut=True) == b"1"
    assert ask(server.socket_path, b"alice\tS3cret-Too\n\n") == b"1"
    assert ask(server.socket_path, b"x" * 40 + b"\nLong-Pw\n") == b"1"
    server.shutdown()
    text = "\n".join(lines.lines)
    assert "s3cret" not in text and "S3cret" not in text and "x" * 33 not in text
    assert text.count("user=hmac:") == 3


# -- framing: answer at once, judge only what came with the request -------------------


def _wait_consumed(sock: socket.socket, timeout: float = 3.0) -> None:
    """Until the server has read everything this socket sent (SIOCOUTQ is 0)."""
    deadline = time.monotonic() + timeout
    while struct.unpack("i", fcntl.ioctl(sock.fileno(), SIOCOUTQ, b"\0" * 4))[0]:
        assert time.monotonic() < deadline, "the server never read the request"
        time.sleep(0.0005)


def test_answers_at_once_bytes_written_later_are_not_awaited(
        serve: Callable[..., Any]) -> None:
    """Once the server has read the request, a byte written later changes nothing: it
    answered (a server that waits for stray bytes would see it and deny)."""
    server = serve()
    for _ in range(3):
        with connect(server.socket_path) as sock:
            sock.sendall(b"alice\nalice-auth-pw\n")
            _wait_consumed(sock)
            with contextlib.suppress(OSError):
                sock.sendall(b"x")
            assert read_all(sock) == b"0"


@pytest.mark.parametrize("extra", [b"x", b"\n", b"extra\n"])
def test_extra_bytes_in_the_same_write_are_denied(serve: Callable[..., Any],
                                                  extra: bytes) -> None:
    server = serve()
    assert ask(server.socket_path, b"alice\nalice-auth-pw\n" + extra) == b"1"
    with connect(server.socket_path) as sock:  # the last write brings the extra byte
        sock.sendall(b"alice\nalice-")
        _wait_consumed(sock)
        sock.sendall(b"pw\n" + extra)
        assert read_all(sock) == b"1"


def test_no_trailing_grace_left() -> None:
    assert not hasattr(rs.RedirectorServer, "trailing_grace")


# -- the credentials file -------------------------------------------------------------


def _creds(path: Path, mode: int = 0o600) -> Path:
    path.write_text(f"alice:{rs.hash_password(b'pw', n=FAST_N)}\n")
    os.chmod(path, mode)
    return path


@root_only
def test_refuses_a_file_owned_by_another_user(short_dir: Path) -> None:
    path = _creds(short_dir / "creds")
    os.chown(path, 12345, 12345)
    with pytest.raises(rs.CredentialsError, match="owned by uid 12345"):
        rs.CredentialStore.load(path)
    os.chown(path, 0, 12345)  # root's file with another group: fine
    assert rs.CredentialStore.load(path).verify(b"alice", b"pw")


@pytest.mark.parametrize("mode", [0o620, 0o660, 0o602, 0o666])
def test_refuses_a_group_or_world_writable_file(short_dir: Path, mode: int) -> None:
    path = _creds(short_dir / "creds", mode)
    with pytest.raises(rs.CredentialsError, match="group- or world-writable"):
        rs.CredentialStore.load(path)


def test_refuses_a_symlink(short_dir: Path) -> None:
    target = _creds(short_dir / "real")
    (short_dir / "link").symlink_to(target)
    with pytest.raises(rs.CredentialsError, match="symbolic link"):
        rs.CredentialStore.load(short_dir / "link")
    assert rs.CredentialStore.load(target).verify(b"alice", b"pw")


def test_refuses_a_directory_and_a_device(short_dir: Path) -> None:
    (short_dir / "dir").mkdir(mode=0o700)
    for path in (short_dir / "dir", Path("/dev/null")):
        with pytest.raises(rs.CredentialsError, match="not a regular file"):
            rs.CredentialStore.load(path)


def run(*args: str, timeout: float = 10) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True,
                          stdin=subprocess.DEVNULL, timeout=timeout, check=False)


def test_a_fifo_is_refused_without_blocking(short_dir: Path) -> None:
    fifo = short_dir / "creds"
    os.mkfifo(fifo, 0o600)  # nobody writes it: a plain open() would wait forever
    done = run("serve", str(short_dir / "s"), "--credentials", str(fifo), timeout=10)
    assert done.returncode == 2
    assert done.stderr.decode().strip().splitlines() == [
        f"redirector_server: error: {fifo}: not a regular file; refusing it"]


@root_only
def test_serve_refuses_a_foreign_file_with_one_line(short_dir: Path) -> None:
    path = _creds(short_dir / "creds")
    os.chown(path, 12345, 12345)
    done = run("serve", str(short_dir / "s"), "--credentials", str(path))
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1
    assert b"owned by uid 12345" in done.stderr and b"Traceback" not in done.stderr
    assert not (short_dir / "s").exists()


# -- every verification costs the same ----------------------------------------------


@pytest.fixture
def scrypt_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int, int]]:
    calls: list[tuple[int, int, int]] = []
    real = rs._scrypt

    def spy(password: bytes, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
        calls.append((n, r, p))
        return bytes(real(password, salt, n, r, p, dklen))

    monkeypatch.setattr(rs, "_scrypt", spy)
    return calls


def _mixed_store() -> Any:
    return rs.CredentialStore({
        b"cheap": rs.ScryptHash.create(b"cheap-pw", n=2**10),
        b"dear": rs.ScryptHash.create(b"dear-pw", n=2**11),
        b"wide": rs.ScryptHash.create(b"wide-pw", n=2**10, r=4),
    })


@pytest.mark.parametrize(
    ("user", "password", "granted"),
    [
        (b"cheap", b"cheap-pw", True),
        (b"cheap", b"wrong", False),
        (b"dear", b"dear-pw", True),
        (b"dear", b"cheap-pw", False),
        (b"wide", b"wide-pw", True),
        (b"mallory", b"cheap-pw", False),
        (b"", b"", False),
    ],
)
def test_every_verification_runs_the_same_scrypt_work(
        scrypt_calls: list[tuple[int, int, int]], user: bytes, password: bytes,
        granted: bool) -> None:
    store = _mixed_store()
    scrypt_calls.clear()
    assert store.verify(user, password) is granted
    # the same parameters, in the same order, whoever asks and whatever the answer
    assert scrypt_calls == [(1024, 4, 1), (1024, 8, 1), (2048, 8, 1)]


def test_one_cost_file_runs_one_scrypt(scrypt_calls: list[tuple[int, int, int]]) -> None:
    store = rs.CredentialStore.from_pairs([(b"a", b"pw"), (b"b", b"pw2")], n=FAST_N)
    scrypt_calls.clear()
    assert store.verify(b"a", b"pw") and not store.verify(b"zed", b"pw")
    assert scrypt_calls == [(FAST_N, 8, 1)] * 2
    assert store.warnings == []


def test_mixed_costs_warn_and_too_many_are_refused(short_dir: Path) -> None:
    path = short_dir / "creds"
    path.write_text("".join(f"u{i}:{rs.hash_password(b'pw', n=2**(10 + i))}\n"
                            for i in range(2)))
    os.chmod(path, 0o600)
    store = rs.CredentialStore.load(path)
    assert any("2 different scrypt costs" in w for w in store.warnings)
    path.write_text("".join(f"u{i}:{rs.hash_password(b'pw', n=2**(10 + i))}\n"
                            for i in range(rs.MAX_COSTS + 1)))
    with pytest.raises(rs.CredentialsError, match="different scrypt costs"):
        rs.CredentialStore.load(path)


# -- refused peers -------------------------------------------------------------------


def test_a_refused_peer_is_closed_at_once(serve: Callable[..., Any]) -> None:
    """Denied without waiting for a request: a silent refused client is answered long
    before the idle timeout (the read would time out first on a server that waits)."""
    server = serve(allow_uids={ME + 1}, idle_timeout=5.0)
    with connect(server.socket_path, timeout=2.0) as sock:
        assert read_all(sock) == b"1"
    assert server.busy == 0


@root_only
def test_a_refused_peer_holds_no_slot(serve: Callable[..., Any]) -> None:
    server = serve(max_clients=1, idle_timeout=5.0)
    held = threading.Thread(target=connect_as,
                            args=(NOBODY, NOBODY, server.socket_path, b"", 5.0),
                            kwargs={"keep_dac_override": True})
    held.start()  # nobody connects and stays silent
    try:
        time.sleep(0.3)
        assert ask(server.socket_path, b"alice\nalice-auth-pw\n") == b"0"
    finally:
        held.join(10)


@root_only
def test_one_uid_cannot_take_every_slot(serve: Callable[..., Any]) -> None:
    server = serve(max_clients=4, allow_uids={ME, NOBODY}, idle_timeout=5.0)
    assert server.max_per_uid == 2
    with connect(server.socket_path), connect(server.socket_path):
        deadline = time.monotonic() + 3
        while server.busy < 2:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        with connect(server.socket_path, timeout=2.0) as third:  # over root's share
            assert read_all(third) == b"1"
        outcome = connect_as(NOBODY, NOBODY, server.socket_path, b"alice\nalice-auth-pw\n", 3.0,
                             keep_dac_override=True)
        assert outcome.reply == b"0", outcome.describe()


def test_max_per_uid_must_fit_max_clients(short_dir: Path) -> None:
    store = rs.CredentialStore.from_pairs([(b"a", b"pw")], n=FAST_N)
    with pytest.raises(ValueError, match="max_per_uid"):
        rs.RedirectorServer(short_dir / "s", store, max_clients=2, max_per_uid=3)
    assert rs.RedirectorServer(short_dir / "s", store, max_clients=1).max_per_uid == 1


def test_refusal_lines_are_rate_limited(serve: Callable[..., Any], lines: Lines) -> None:
    server = serve(allow_uids={ME + 1})
    for _ in range(20):
        with connect(server.socket_path) as sock:
            assert read_all(sock) == b"1"
    deadline = time.monotonic() + 3
    while not any("more connection(s) refused" in line for line in lines.lines):
        assert time.monotonic() < deadline, lines.lines  # the summary comes unprompted
        time.sleep(0.05)
    refused = [line for line in lines.lines if line.startswith("refused ")]
    summaries = [line for line in lines.lines if "more connection(s) refused" in line]
    assert len(refused) + sum(int(s.split()[2]) for s in summaries) == 20
    assert len(refused) <= 2 * server.refusals.per_second
    assert all(f"uid={ME}" in line and "not allowed" in line for line in refused)


def test_refusal_log_window() -> None:
    now = [100.0]
    handler = Lines()
    log = logging.getLogger("test-refusal-window")
    log.handlers[:] = [handler]
    log.propagate = False
    limiter = rs.RefusalLog(log, per_second=3, clock=lambda: now[0])
    for i in range(10):
        limiter.refused(f"peer {i}")
    assert handler.lines == ["refused peer 0", "refused peer 1", "refused peer 2"]
    assert limiter.flush() == pytest.approx(1.0)
    now[0] += 1.5
    assert limiter.flush() is None
    assert handler.lines[-1] == "... and 7 more connection(s) refused in 1.5 s"
    limiter.refused("peer 10")
    assert handler.lines[-1] == "refused peer 10"


# -- help ----------------------------------------------------------------------------


@pytest.mark.parametrize("args", [["--help"], ["serve", "--help"], ["adduser", "--help"]])
def test_help_works(args: list[str]) -> None:
    done = run(*args)
    assert done.returncode == 0 and done.stderr == b""
    assert done.stdout.startswith(b"usage: redirector_server")
    if "serve" in args:
        for option in (b"--credentials", b"--max-clients", b"--max-per-uid",
                       b"--idle-timeout"):
            assert option in done.stdout
        assert b"owned by root" in done.stdout
