"""Self-tests of the reference redirector server, through a real socket."""

from __future__ import annotations

import errno
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
from listening import wait_listening
from stray_signal import run_with_stray_sigterm

from pamconform.lab import gallery

faulty = gallery.load()
rs = faulty.load_reference_server()

SCRIPT = str(faulty.REFERENCE_PATH)
FAST_N = 2**10
LONG_PW = b"p" * 4096
PAIRS = [(b"alice", b"alice-auth-pw"), (b"bob", b"B0b pw \xc3\xa9"), (b"long", LONG_PW)]
ME = os.getuid()


@pytest.fixture(scope="module")
def store() -> Any:
    return rs.CredentialStore.from_pairs(PAIRS, n=FAST_N)


@pytest.fixture
def make_server(short_dir: Path, store: Any) -> Iterator[Callable[..., Any]]:
    """Start reference servers on sockets in a private short dir; all stopped after."""
    servers: list[Any] = []

    def make(cls: type = rs.RedirectorServer, **options: Any) -> Any:
        options.setdefault("allow_uids", {ME})
        options.setdefault("idle_timeout", 1.0)
        server = cls(short_dir / f"s{len(servers)}", store, **options)
        servers.append(server)
        server.start()
        return server

    yield make
    for server in servers:
        server.shutdown()


@pytest.fixture
def server(make_server: Callable[..., Any]) -> Any:
    return make_server()


def connect(path: str | Path, timeout: float = 3.0) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.connect(str(path))
    return sock


def read_all(sock: socket.socket) -> bytes:
    """Everything until EOF (a reset after data counts as EOF)."""
    data = b""
    while True:
        try:
            chunk = sock.recv(1024)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


def ask(path: str | Path, *chunks: bytes, pause: float = 0.0, shut: bool = False,
        timeout: float = 3.0) -> bytes:
    """Send the chunks (with pauses) on a fresh connection; return the whole reply.

    A server that answers early may close before all is sent: the reply is still read.
    """
    with connect(path, timeout) as sock:
        try:
            for i, chunk in enumerate(chunks):
                if i and pause:
                    time.sleep(pause)
                sock.sendall(chunk)
            if shut:
                sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass
        return read_all(sock)


def req(user: bytes, password: bytes) -> bytes:
    return user + b"\n" + password + b"\n"


# -- R-S1/R-S2: replies --------------------------------------------------------------


def test_grants_valid_credentials(server: Any) -> None:
    for user, password in PAIRS:
        assert ask(server.socket_path, req(user, password)) == b"0"


@pytest.mark.parametrize(
    ("user", "password"),
    [
        (b"alice", b"wrong"),
        (b"alice", b""),
        (b"alice", b"alice-auth-p"),
        (b"alice", b"alice-auth-pwx"),
        (b"alice", b"ALICE-AUTH-PW"),
        (b"alice", b" alice-auth-pw"),
        (b"alice", b"alice-auth-pw "),
        (b"Alice", b"alice-auth-pw"),
        (b"alice ", b"alice-auth-pw"),
        (b"mallory", b"alice-auth-pw"),
        (b"", b"alice-auth-pw"),
        (b"alice", b"bob"),
        (b"bob", b"b0b pw \xc3\xa9"),
    ],
)
def test_denies_anything_else(server: Any, user: bytes, password: bytes) -> None:
    assert ask(server.socket_path, req(user, password)) == b"1"


@pytest.mark.parametrize(
    "payload",
    [
        b"alice\nalice-auth-pw\0\n",
        b"alice\nalice-auth-pw\0junk\n",
        b"alice\0junk\nalice-auth-pw\n",
        b"alice\r\nalice-auth-pw\r\n",
        b"alice\nalice-auth-pw\r\n",
        b"alice\nalice-auth-pw\nextra\n",
        b"alice\nalice-auth-pw\nx",
        b"alice\nalice-auth-pw\n\n",
    ],
)
def test_denies_nul_cr_and_extra_bytes(server: Any, payload: bytes) -> None:
    assert ask(server.socket_path, payload) == b"1"


@pytest.mark.parametrize("payload", [b"", b"alice", b"alice\n", b"alice\nalice-auth-pw"])
def test_denies_missing_lines(server: Any, payload: bytes) -> None:
    assert ask(server.socket_path, payload, shut=True) == b"1"


def test_eof_after_a_complete_request_is_fine(server: Any) -> None:
    assert ask(server.socket_path, req(b"alice", b"alice-auth-pw"), shut=True) == b"0"


def test_no_state_between_connections(server: Any) -> None:
    path = server.socket_path
    assert ask(path, req(b"alice", b"alice-auth-pw")) == b"0"
    assert ask(path, req(b"alice", b"wrong")) == b"1"
    assert ask(path, req(b"alice", b"alice-auth-pw")) == b"0"


# -- R-S3: framing --------------------------------------------------------------------


def test_frames_byte_at_a_time(server: Any) -> None:
    data = req(b"alice", b"alice-auth-pw")
    chunks = [data[i : i + 1] for i in range(len(data))]
    assert ask(server.socket_path, *chunks, pause=0.005) == b"0"


@pytest.mark.parametrize(
    "chunks",
    [
        [b"alice\n", b"alice-auth-pw\n"],
        [b"alice", b"\nalice-auth-pw", b"\n"],
        [b"al", b"ice\nalice-a", b"uth-pw\n"],
    ],
)
def test_frames_any_split(server: Any, chunks: list[bytes]) -> None:
    assert ask(server.socket_path, *chunks, pause=0.05) == b"0"


# -- R-S4: bounds ---------------------------------------------------------------------


def test_field_at_the_limit_is_accepted_one_more_byte_is_not(server: Any) -> None:
    assert ask(server.socket_path, req(b"long", LONG_PW)) == b"0"
    assert ask(server.socket_path, req(b"long", LONG_PW + b"p")) == b"1"
    assert ask(server.socket_path, req(b"u" * 4097, b"x")) == b"1"


def test_field_limit_cuts_a_line_without_newline(make_server: Callable[..., Any]) -> None:
    server = make_server(idle_timeout=10.0, field_limit=64)
    start = time.monotonic()
    with connect(server.socket_path) as sock:
        sock.sendall(b"a" * 8192)  # fits the socket buffer: no EPIPE race
        assert read_all(sock) == b"1"
    assert time.monotonic() - start < 2.0  # the limit, not the idle timeout


def test_flood_is_cut_off(make_server: Callable[..., Any]) -> None:
    server = make_server(idle_timeout=10.0)
    sent = 0
    with connect(server.socket_path) as sock:
        try:
            while sent < 16 * 1024 * 1024:
                sent += sock.send(b"A" * 65536)
        except (BrokenPipeError, ConnectionResetError):
            pass
    assert sent < 16 * 1024 * 1024


def test_silent_client_is_dropped(make_server: Callable[..., Any]) -> None:
    server = make_server(idle_timeout=0.3)
    start = time.monotonic()
    with connect(server.socket_path) as sock:
        assert read_all(sock) == b"1"
    assert 0.25 < time.monotonic() - start < 2.0


def test_idle_timeout_covers_the_whole_request(make_server: Callable[..., Any]) -> None:
    server = make_server(idle_timeout=0.3)
    start = time.monotonic()
    with connect(server.socket_path) as sock:
        try:
            for byte in b"alice\nalice-auth-pw":  # one byte per 100 ms: never done in time
                sock.send(bytes([byte]))
                time.sleep(0.1)
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert read_all(sock) == b"1"
    assert time.monotonic() - start < 1.5


def test_slow_clients_do_not_delay_others(make_server: Callable[..., Any]) -> None:
    server = make_server(idle_timeout=10.0)  # a serial server would make the third wait 10 s
    path = server.socket_path
    with connect(path), connect(path) as slow:  # one silent, one slow
        slow.sendall(b"al")
        start = time.monotonic()
        assert ask(path, req(b"alice", b"alice-auth-pw")) == b"0"
        assert time.monotonic() - start < 3.0


def test_max_clients_refuses_extra_connections(make_server: Callable[..., Any]) -> None:
    server = make_server(max_clients=2, max_per_uid=2, idle_timeout=10.0)
    path = server.socket_path
    with connect(path), connect(path):
        time.sleep(0.2)  # both slots are taken by silent clients
        start = time.monotonic()
        assert ask(path, req(b"alice", b"alice-auth-pw")) == b"1"
        assert time.monotonic() - start < 3.0  # refused at once, not after the 10 s idle
    deadline = time.monotonic() + 3
    while ask(path, req(b"alice", b"alice-auth-pw")) != b"0":
        assert time.monotonic() < deadline, "slots were not released"
        time.sleep(0.05)


def test_concurrent_clients(server: Any) -> None:
    results: dict[int, bytes | Exception] = {}

    def client(i: int) -> None:
        password = b"alice-auth-pw" if i % 2 == 0 else b"wrong-%d" % i
        try:
            results[i] = ask(server.socket_path, req(b"alice", password), timeout=10)
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=client, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    assert results == {i: b"0" if i % 2 == 0 else b"1" for i in range(20)}


# -- R-S6: peer credentials and socket safety --------------------------------------


def test_peer_not_on_the_allow_list_is_denied(make_server: Callable[..., Any]) -> None:
    calls: list[bytes] = []

    class Spy(rs.RedirectorServer):  # type: ignore[misc, name-defined]
        def authenticate(self, user: bytes, password: bytes) -> bool:
            calls.append(user)
            return bool(super().authenticate(user, password))

    server = make_server(Spy, allow_uids={ME + 1})
    assert ask(server.socket_path, req(b"alice", b"alice-auth-pw")) == b"1"
    assert calls == []


def test_socket_mode_is_0600_and_removed_on_shutdown(server: Any) -> None:
    st = os.lstat(server.socket_path)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o600
    server.shutdown()
    assert not os.path.lexists(server.socket_path)


def test_socket_mode_option(make_server: Callable[..., Any]) -> None:
    server = make_server(socket_mode=0o660)
    assert stat.S_IMODE(os.lstat(server.socket_path).st_mode) == 0o660


@pytest.mark.parametrize("kind", ["file", "symlink", "dangling-symlink", "directory"])
def test_refuses_a_non_socket_at_the_path(short_dir: Path, store: Any, kind: str) -> None:
    path = short_dir / "sock"
    target = short_dir / "target"
    if kind == "file":
        path.write_bytes(b"precious")
    elif kind == "symlink":
        target.write_bytes(b"precious")
        path.symlink_to(target)
    elif kind == "dangling-symlink":
        path.symlink_to(short_dir / "nowhere")
    else:
        path.mkdir()
    server = rs.RedirectorServer(path, store, allow_uids={ME})
    with pytest.raises(rs.ServerError, match=r"symbolic link|not a socket"):
        server.start()
    assert os.path.lexists(path)
    if kind != "directory":
        assert path.is_symlink() == (kind != "file")
    if kind in ("file", "symlink"):
        assert (target if kind == "symlink" else path).read_bytes() == b"precious"


def test_replaces_a_stale_socket_but_not_a_live_one(short_dir: Path, store: Any) -> None:
    path = short_dir / "sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # the file stays, nobody listens
    with rs.RedirectorServer(path, store, allow_uids={ME}) as live:
        assert ask(path, req(b"alice", b"alice-auth-pw")) == b"0"
        with pytest.raises(rs.ServerError, match="another server"):
            rs.RedirectorServer(path, store, allow_uids={ME}).start()
        assert ask(live.socket_path, req(b"alice", b"alice-auth-pw")) == b"0"


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o2770])
def test_refuses_a_group_or_world_writable_directory(short_dir: Path, store: Any,
                                                     mode: int) -> None:
    os.chmod(short_dir, mode)
    server = rs.RedirectorServer(short_dir / "sock", store, allow_uids={ME})
    with pytest.raises(rs.ServerError, match="group- or world-writable"):
        server.start()
    with rs.RedirectorServer(short_dir / "sock", store, allow_uids={ME},
                             allow_unsafe_dir=True) as unsafe:
        assert ask(unsafe.socket_path, req(b"alice", b"alice-auth-pw")) == b"0"


def test_refuses_an_over_long_path(store: Any) -> None:
    with pytest.raises(rs.ServerError, match="socket path"):
        rs.RedirectorServer("/tmp/" + "x" * 120, store).start()


# -- credentials ----------------------------------------------------------------------


def test_hash_format() -> None:
    encoded = rs.hash_password(b"pw")
    parts = encoded.split("$")
    assert parts[:4] == ["scrypt", str(2**14), "8", "1"]
    parsed = rs.ScryptHash.parse(encoded.encode())
    assert (len(parsed.salt), len(parsed.key)) == (16, 32)
    assert parsed.check(b"pw") and not parsed.check(b"pw ")


def test_unknown_user_costs_a_hash(store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bytes] = []
    real = rs.ScryptHash.check

    def spy(self: Any, password: bytes) -> bool:
        calls.append(password)
        return bool(real(self, password))

    monkeypatch.setattr(rs.ScryptHash, "check", spy)
    assert not store.verify(b"mallory", b"alice-auth-pw")
    assert not store.verify(b"alice", b"wrong")
    assert calls == [b"alice-auth-pw", b"wrong"]


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"alice\n", ":1: expected user:hash"),
        (b"# ok\n\nalice:plain\n", ":3: expected scrypt"),
        (b":scrypt$1024$8$1$AAAAAAAAAAA=$AAAAAAAAAAAAAAAAAAAAAA==\n", ":1: empty user"),
        (b"a:scrypt$1000$8$1$AAAAAAAAAAA=$AAAAAAAAAAAAAAAAAAAAAA==\n", ":1: N must be"),
        (b"a:scrypt$1024$8$1$!!$AAAAAAAAAAAAAAAAAAAAAA==\n", ":1: salt and key"),
    ],
)
def test_malformed_credentials_name_file_and_line(short_dir: Path, content: bytes,
                                                   needle: str) -> None:
    path = short_dir / "creds"
    path.write_bytes(content)
    os.chmod(path, 0o600)
    with pytest.raises(rs.CredentialsError, match=needle):
        rs.CredentialStore.load(path)


def test_credentials_permissions(short_dir: Path) -> None:
    path = short_dir / "creds"
    path.write_text(f"alice:{rs.hash_password(b'pw', n=FAST_N)}\n")
    os.chmod(path, 0o644)
    loaded = rs.CredentialStore.load(path)
    assert loaded.verify(b"alice", b"pw")
    assert any("world-readable" in w for w in loaded.warnings)
    os.chmod(path, 0o602)
    with pytest.raises(rs.CredentialsError, match="world-writable"):
        rs.CredentialStore.load(path)


# -- command line (subprocesses) -----------------------------------------------------


def run(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, SCRIPT, *args], input=stdin, capture_output=True,
                          timeout=30, check=False)


def test_adduser_round_trip(short_dir: Path) -> None:
    path = short_dir / "creds"
    assert run("adduser", str(path), "alice", stdin=b"first pw\n").returncode == 0
    assert run("adduser", str(path), "bob", stdin=b"bob-pw\n").returncode == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    done = run("adduser", str(path), "alice", stdin=b"second pw\n")
    assert done.returncode == 0 and b"replaced" in done.stderr
    lines = path.read_bytes().splitlines()
    assert [line.split(b":")[0] for line in lines] == [b"alice", b"bob"]
    assert b"second pw" not in path.read_bytes()
    loaded = rs.CredentialStore.load(path)
    assert loaded.verify(b"alice", b"second pw")
    assert not loaded.verify(b"alice", b"first pw")
    assert loaded.verify(b"bob", b"bob-pw")


@pytest.mark.parametrize(
    ("args", "stdin", "needle"),
    [
        (["adduser", "{dir}/c", "a:bbbb"], b"pw\n", b"contains ':'"),
        (["adduser", "{dir}/c", ""], b"pw\n", b"empty user"),
        (["adduser", "{dir}/c", "alice"], b"", b"no password"),
        (["adduser", "{dir}/c", "alice"], b"\n", b"empty password"),
        (["adduser", "{dir}/c", "alice"], b"pw\r\n", b"CR"),
        (["serve", "{dir}/s", "--credentials", "{dir}/missing"], b"", b"cannot read"),
        (["serve", "{dir}/s", "--credentials", "{dir}/c", "--socket-mode", "9"], b"", b"octal"),
        (["serve", "{dir}/s", "--credentials", "{dir}/c", "--idle-timeout", "0"], b"", b"> 0"),
        (["serve", "{dir}/s"], b"", b"--credentials"),
        (["frobnicate"], b"", b"invalid choice"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(short_dir: Path, args: list[str], stdin: bytes,
                                          needle: bytes) -> None:
    done = run(*(a.format(dir=short_dir) for a in args), stdin=stdin)
    assert done.returncode == 2
    assert needle in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert b"Traceback" not in done.stderr


# -- adduser's credentials file: what serve would accept, or nothing yet; written 0600 --


def adduser(path: Path | str, user: str = "bob", stdin: bytes = b"bob-pw\n",
            **options: Any) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, SCRIPT, "adduser", "--scrypt-n", str(FAST_N), str(path), user],
        input=stdin, capture_output=True, timeout=30, check=False, **options)


def assert_refused(done: subprocess.CompletedProcess[bytes], needle: bytes) -> None:
    assert done.returncode == 2, done.stderr
    assert needle in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert b"Traceback" not in done.stderr and b"harness error" not in done.stderr


def alice_file(path: Path, mode: int = 0o600) -> Path:
    path.write_text(f"alice:{rs.hash_password(b'alice-pw', n=FAST_N)}\n")
    os.chmod(path, mode)
    return path


def no_temp_files(directory: Path) -> bool:
    return not list(directory.glob(".credentials-*"))


@pytest.mark.parametrize("dangling", [False, True])
def test_adduser_refuses_a_symlink_and_leaves_its_target(tmp_path: Path,
                                                         dangling: bool) -> None:
    target = tmp_path / "real"
    if not dangling:
        alice_file(target)
    before = target.read_bytes() if not dangling else None
    link = tmp_path / "link"
    link.symlink_to(target)
    # refused before the password is asked for (none on stdin)
    assert_refused(adduser(link, stdin=b""), b"symbolic link")
    assert_refused(adduser(link), b"symbolic link")
    assert link.is_symlink()
    if dangling:
        assert not target.exists()
    else:
        assert target.read_bytes() == before
        assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert no_temp_files(tmp_path)


def test_adduser_refuses_a_fifo_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o600)
    started = time.monotonic()
    assert_refused(adduser(fifo), b"not a regular file")
    assert time.monotonic() - started < 10
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert no_temp_files(tmp_path)


def test_adduser_refuses_a_directory(tmp_path: Path) -> None:
    directory = tmp_path / "dir"
    directory.mkdir(mode=0o700)
    assert_refused(adduser(directory), b"not a regular file")
    assert directory.is_dir() and not list(directory.iterdir())
    assert no_temp_files(tmp_path)


def test_adduser_refuses_a_socket(short_dir: Path) -> None:
    path = short_dir / "sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(str(path))
        assert_refused(adduser(path), b"not a regular file")
    assert stat.S_ISSOCK(path.lstat().st_mode)
    assert no_temp_files(short_dir)


def test_adduser_refuses_a_missing_directory(tmp_path: Path) -> None:
    missing = tmp_path / "nodir"
    assert_refused(adduser(missing / "creds"), f"{missing}: no such directory".encode())
    assert not missing.exists()
    assert_refused(adduser(missing / "creds", stdin=b""), b"no such directory")


def test_adduser_refuses_an_oversize_file(tmp_path: Path) -> None:
    path = alice_file(tmp_path / "creds")
    os.truncate(path, rs.MAX_CREDENTIALS_BYTES + 1)  # sparse: no real 16 MiB written
    assert_refused(adduser(path), b"larger than")
    assert path.stat().st_size == rs.MAX_CREDENTIALS_BYTES + 1
    assert no_temp_files(tmp_path)


@pytest.mark.parametrize("mode", [0o620, 0o602])
def test_adduser_refuses_a_writable_file_as_serve_does(tmp_path: Path, mode: int) -> None:
    path = alice_file(tmp_path / "creds", mode)
    before = path.read_bytes()
    assert_refused(adduser(path), b"group- or world-writable")
    assert path.read_bytes() == before and stat.S_IMODE(path.stat().st_mode) == mode


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chown to another uid)")
def test_adduser_refuses_another_users_file(tmp_path: Path) -> None:
    path = alice_file(tmp_path / "creds")
    os.chown(path, 12345, 12345)
    before = path.read_bytes()
    assert_refused(adduser(path), b"owned by uid 12345")
    assert path.read_bytes() == before and path.stat().st_uid == 12345


def test_adduser_makes_a_0644_file_0600(tmp_path: Path) -> None:
    path = alice_file(tmp_path / "creds", 0o644)
    done = adduser(path)
    assert done.returncode == 0, done.stderr
    assert b"added bob" in done.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = rs.CredentialStore.load(path)
    assert loaded.verify(b"alice", b"alice-pw") and loaded.verify(b"bob", b"bob-pw")
    assert no_temp_files(tmp_path)


def test_adduser_writes_a_new_file_0600_whatever_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "creds"
    done = adduser(path, umask=0)
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.stat().st_uid == ME
    assert rs.CredentialStore.load(path).verify(b"bob", b"bob-pw")
    assert no_temp_files(tmp_path)


def test_adduser_removes_its_temp_file_when_the_rename_fails(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = alice_file(tmp_path / "creds")
    before = path.read_bytes()

    def no_rename(src: str, dst: str) -> None:
        raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))

    monkeypatch.setattr(rs.os, "replace", no_rename)
    with pytest.raises(rs.RedirectorError, match="cannot write"):
        rs.add_user(str(path), b"bob", b"bob-pw", n=FAST_N)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert no_temp_files(tmp_path)


def test_hash_command() -> None:
    done = run("hash", "--scrypt-n", "1024", stdin=b"pw\n")
    assert done.returncode == 0
    assert rs.ScryptHash.parse(done.stdout.strip()).check(b"pw")


def test_serve_logs_but_never_the_password_and_stops_on_sigterm(short_dir: Path) -> None:
    creds = short_dir / "creds"
    secret, wrong = "Very-Secret-Pw-42", "Wrong-Guess-Pw-17"
    creds.write_text(f"alice:{rs.hash_password(secret.encode(), n=FAST_N)}\n")
    os.chmod(creds, 0o600)
    sock = short_dir / "sock"
    proc = subprocess.Popen(
        [sys.executable, SCRIPT, "serve", str(sock), "--credentials", str(creds),
         "--allow-uid", str(ME)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_listening(sock, proc, "the server")
        assert ask(sock, req(b"alice", secret.encode())) == b"0"
        assert ask(sock, req(b"alice", wrong.encode())) == b"1"
        assert ask(sock, req(b"alice", secret.encode() + b"\0x")) == b"1"
        assert ask(sock, req(b"alice\x1b[31m", secret.encode())) == b"1"
        # misframed: user and password on one line, then EOF (the user field holds both)
        assert ask(sock, b"alice " + secret.encode() + b"\n", shut=True) == b"1"
        with connect(sock) as held:  # in flight at SIGTERM: answered, not cut short
            held.sendall(b"alice\n")
            time.sleep(0.1)
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.2)
            held.sendall(secret.encode() + b"\n")
            assert read_all(held) == b"0"
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=5)
    assert not sock.exists()
    text = err.decode()
    assert secret not in text and wrong not in text
    assert "Secret" not in text and "Guess" not in text
    assert 'user="alice" granted' in text
    assert 'user="alice" denied (bad credentials)' in text
    assert 'user="alice" denied (NUL byte)' in text
    assert "alice\x1b" not in text and "\\x1b" not in text
    assert re.search(r"user=hmac:[0-9a-f]{8} denied \(bad credentials\)", text)
    assert "Traceback" not in text


def test_sigterm_cuts_a_silent_client_after_the_grace_period(short_dir: Path) -> None:
    creds = short_dir / "creds"
    creds.write_text(f"alice:{rs.hash_password(b'pw', n=FAST_N)}\n")
    os.chmod(creds, 0o600)
    sock = short_dir / "sock"
    proc = subprocess.Popen(
        [sys.executable, SCRIPT, "serve", str(sock), "--credentials", str(creds),
         "--allow-uid", str(ME), "--idle-timeout", "60", "--quiet"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_listening(sock, proc, "the server")
        with connect(sock, timeout=5) as silent:
            time.sleep(0.1)
            start = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=30)
            assert read_all(silent) == b"1"
        assert proc.returncode == 0
        # cut after the 2 s grace, not at the 60 s idle timeout (the margin is for a loaded host)
        assert 1.5 < time.monotonic() - start < 15.0
        assert not sock.exists()
        assert b"Traceback" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=5)



def test_a_stop_denies_requests_still_being_checked_when_the_server_exits(
        make_server: Callable[..., Any]) -> None:
    """A handler still hashing at the end of the grace dies with the process: its client
    must read a denial, not a bare close (the original module takes that for a grant)."""
    release = threading.Event()

    class SlowHash(rs.RedirectorServer):  # type: ignore[misc, name-defined]
        shutdown_grace = 0.2

        def authenticate(self, user: bytes, password: bytes) -> bool:
            release.wait(30)
            return False

    server = make_server(SlowHash)
    clients = [connect(server.socket_path, timeout=5) for _ in range(3)]
    try:
        for i, client in enumerate(clients):
            client.sendall(b"alice\nwrong%d\n" % i)
        time.sleep(0.2)
        server.shutdown()
        assert [read_all(c) for c in clients] == [b"1"] * 3
    finally:
        release.set()
        for client in clients:
            client.close()


def test_a_stop_signal_that_misses_the_accept_loop_still_stops_it(short_dir: Path) -> None:
    """A SIGTERM that does not interrupt the accept loop's select() (see stray_signal)
    must still stop the server within its poll bound, not at the next connection."""
    sock = short_dir / "sock"
    setup = (
        "import os\n"
        "from pamconform.lab import gallery\n"
        "rs = gallery.load().load_reference_server()\n"
        "store = rs.CredentialStore.from_pairs([(b'alice', b'pw')], n=1024)\n"
        f"WATCHED = {str(sock)!r}\n"
        "server = rs.RedirectorServer(WATCHED, store, allow_uids={os.getuid()},\n"
        "                             log=rs.configure_logging())\n")
    status, err = run_with_stray_sigterm(setup, "rs.run_until_signalled(server)")
    assert status == 0, err.decode(errors="replace")
    assert b"stopped" in err
    assert not sock.exists()
