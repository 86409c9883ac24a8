#!/usr/bin/env python3
"""Reference auth server for pam_redirector (Python standard library only).

Wire protocol: a client connects to an AF_UNIX stream socket and sends
``USER\\nPASSWORD\\n``; the server replies ``0`` (grant) or ``1`` (deny), exactly once,
and closes.  This server follows rules R-S1..R-S7 of the profile (docs/protocols.md): exact
byte comparison (no normalisation), framing up to the second newline however the
bytes are split (answered at once, no wait for more bytes), a field limit and a
whole-request idle timeout, bounded threads with a per-uid share, a 0600 socket created
safely, an ``SO_PEERCRED`` allow-list checked before a client takes a slot, scrypt
hashes compared in constant time, the same reply and cost for unknown users, a
credentials file only root or the server's own uid can write, and no passwords in logs.

Usage::

    redirector_server.py serve SOCKET --credentials FILE [--allow-uid UID ...]
        [--idle-timeout S] [--field-limit N] [--max-clients N] [--max-per-uid N]
        [--socket-mode 0600] [--allow-unsafe-dir] [--quiet]
    redirector_server.py adduser FILE USER   # password: first stdin line, or prompted
    redirector_server.py hash                # password on stdin; prints a hash

Only clients whose uid is allowed (default: 0, root, i.e. the PAM side) are served.
When testing as an unprivileged user, pass ``--allow-uid $(id -u)``.

Credentials file: ``user:scrypt$N$r$p$<salt b64>$<key b64>`` lines; ``#`` comments and
blank lines are ignored.  Write it with ``adduser``; keep it mode 0600, owned by root
(or by the uid the server runs as): any other owner, a group- or world-writable file, a
symlink or a non-regular file is refused.
"""

# Shared with servers/token_server.py, on purpose as a copy: the socket set-up (bind with a
# umask, exact mode, refusal of a path that is not our own stale socket), the SO_PEERCRED
# read of the peer's uid, signal-driven shutdown, logging set-up and the argument types
# (_Parser exiting 2, seconds, uids). Not moved into a common module because each server
# is a standalone drop-in: one file run on a bare python3 (in the lab's containers, on a
# host that has no pamconform, and imported by file path by the tests' faulty servers),
# where a sibling import would not resolve. A fix to one of them must be checked in the
# other (and in servers/scenario_server.py, which shares the socket set-up).

import argparse
import base64
import binascii
import contextlib
import errno
import getpass
import hashlib
import hmac
import logging
import os
import pwd
import select
import signal
import socket
import stat
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol, Self

GRANT = b"0"
DENY = b"1"

DEFAULT_N = 2**14
DEFAULT_R = 8
DEFAULT_P = 1
SALT_BYTES = 16
KEY_BYTES = 32
#: Upper bounds accepted when parsing a hash, so a bad file cannot exhaust memory.
MAX_N = 2**20
MAX_SCRYPT_MEMORY = 256 * 1024 * 1024

#: At most this many distinct scrypt costs in one file (each verification runs one hash
#: per distinct cost, see CredentialStore.verify).
MAX_COSTS = 4
#: A credentials file larger than this is refused (it is read whole at start-up).
MAX_CREDENTIALS_BYTES = 16 * 1024 * 1024
#: A user field is logged in clear only up to this many bytes.
LOG_USER_MAX = 32

#: sun_path holds 108 bytes including the terminating NUL.
SUN_PATH_MAX = 107
RECV_SIZE = 65536

_log = logging.getLogger("redirector_server")

#: Bounds concurrent scrypt runs (16 MiB each at the default cost).
_SCRYPT_SLOTS = threading.BoundedSemaphore(max(2, os.cpu_count() or 2))


class RedirectorError(Exception):
    """A configuration or start-up problem, reported as one line (exit status 2)."""


class CredentialsError(RedirectorError):
    """The credentials file is unusable (the message names file:line)."""


class CredentialsMissingError(CredentialsError):
    """The credentials file does not exist (``adduser`` then creates it)."""


class ServerError(RedirectorError):
    """The socket cannot be created safely."""


# --------------------------------------------------------------------------- secrets


class Secret(Protocol):
    """A stored password verifier."""

    def check(self, password: bytes) -> bool:
        """Whether ``password`` matches, in time independent of where it differs."""
        ...


@dataclass(frozen=True)
class ScryptHash:
    """An scrypt verifier: ``scrypt$N$r$p$<salt b64>$<key b64>``."""

    n: int
    r: int
    p: int
    salt: bytes
    key: bytes

    @classmethod
    def create(
        cls, password: bytes, *, n: int = DEFAULT_N, r: int = DEFAULT_R, p: int = DEFAULT_P
    ) -> Self:
        """Hash ``password`` with a fresh random salt."""
        salt = os.urandom(SALT_BYTES)
        return cls(n, r, p, salt, _scrypt(password, salt, n, r, p, KEY_BYTES))

    @classmethod
    def parse(cls, text: bytes) -> Self:
        """Parse the encoded form; raise ValueError saying what is wrong."""
        parts = text.split(b"$")
        if len(parts) != 6 or parts[0] != b"scrypt":
            raise ValueError("expected scrypt$N$r$p$SALT$KEY")
        if not all(x.isdigit() and len(x) < 10 for x in parts[1:4]):
            raise ValueError("N, r and p must be decimal integers")
        n, r, p = (int(x) for x in parts[1:4])
        if n < 2 or n > MAX_N or n & (n - 1):
            raise ValueError(f"N must be a power of two between 2 and {MAX_N}")
        if not (1 <= r <= 64 and 1 <= p <= 16) or 128 * r * (n + p) > MAX_SCRYPT_MEMORY:
            raise ValueError("r or p out of range")
        try:
            salt = base64.b64decode(parts[4], validate=True)
            key = base64.b64decode(parts[5], validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("salt and key must be base64") from None
        if len(salt) < 8 or not 16 <= len(key) <= 64:
            raise ValueError("salt or key has a wrong length")
        return cls(n, r, p, salt, key)

    @property
    def cost(self) -> tuple[int, int, int]:
        """The work parameters ``(N, r, p)``."""
        return self.n, self.r, self.p

    def encode(self) -> str:
        """The text form stored in a credentials file."""
        salt = base64.b64encode(self.salt).decode()
        key = base64.b64encode(self.key).decode()
        return f"scrypt${self.n}${self.r}${self.p}${salt}${key}"

    def check(self, password: bytes) -> bool:
        """Whether ``password`` matches, compared in constant time."""
        derived = _scrypt(password, self.salt, self.n, self.r, self.p, len(self.key))
        return hmac.compare_digest(derived, self.key)


def _scrypt(password: bytes, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    maxmem = 128 * r * (n + p + 2) + 1024 * 1024
    with _SCRYPT_SLOTS:
        return hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, maxmem=maxmem, dklen=dklen)


def hash_password(password: bytes, *, n: int = DEFAULT_N) -> str:
    """An encoded scrypt hash of ``password`` (r=8, p=1, random 16-byte salt).

    >>> hash_password(b"pw", n=2**10).startswith("scrypt$1024$8$1$")
    True
    """
    return ScryptHash.create(password, n=n).encode()


def _to_bytes(value: str | bytes) -> bytes:
    return value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value


def user_problem(user: bytes) -> str | None:
    """Why ``user`` cannot be stored, or None if it can."""
    if not user:
        return "empty user name"
    for bad, name in ((b":", "':'"), (b"\n", "a newline"), (b"\r", "a CR"), (b"\0", "a NUL")):
        if bad in user:
            return f"user name contains {name}"
    if user.startswith(b"#"):
        return "user name starts with '#'"
    return None


def password_problem(password: bytes) -> str | None:
    """Why ``password`` could never be sent and granted, or None."""
    if not password:
        return "empty password"
    for bad, name in ((b"\n", "a newline"), (b"\r", "a CR"), (b"\0", "a NUL")):
        if bad in password:
            return f"password contains {name}"
    return None


# --------------------------------------------------------------------------- store


class CredentialStore:
    """User name -> password verifier, compared as raw bytes (never normalised).

    Every verification costs the same, whoever the user is, even when the file mixes
    scrypt costs: it runs exactly one scrypt per distinct cost present, in the same
    order, the user's own hash at its cost and a dummy at each other cost (all of them
    for an unknown user).  Cheaper designs leak: a dummy at one cost (the first entry's,
    or the highest) separates unknown users from known users of another cost, and a
    second dummy only for cheaper entries makes those users the slowest.  Refusing mixed
    files would break raising the cost user by user; instead the work is bounded by
    ``MAX_COSTS`` distinct costs and a mixed file is reported as a warning.
    """

    def __init__(
        self,
        entries: dict[bytes, Secret],
        *,
        default_cost: tuple[int, int, int] = (DEFAULT_N, DEFAULT_R, DEFAULT_P),
    ) -> None:
        self._entries = dict(entries)
        costs = sorted({s.cost for s in self._entries.values() if isinstance(s, ScryptHash)})
        #: One dummy per distinct cost (``default_cost`` for a store without scrypt users).
        self._dummies = [
            ScryptHash(*cost, os.urandom(SALT_BYTES), os.urandom(KEY_BYTES))
            for cost in costs or [default_cost]
        ]
        #: Non-fatal problems found while loading (e.g. a world-readable file).
        self.warnings: list[str] = []
        if len(costs) > 1:
            self.warnings.append(
                f"users are hashed at {len(costs)} different scrypt costs "
                f"({', '.join(f'N={n} r={r} p={p}' for n, r, p in costs)}): every check runs "
                "one hash per cost; re-add users with adduser at one cost")

    @property
    def costs(self) -> list[tuple[int, int, int]]:
        """The scrypt costs every verification runs, in order."""
        return [d.cost for d in self._dummies]

    @classmethod
    def from_pairs(
        cls, pairs: Iterable[tuple[str | bytes, str | bytes]], *, n: int = DEFAULT_N
    ) -> Self:
        """A store hashing the given plaintext pairs (a low ``n`` speeds up tests)."""
        entries: dict[bytes, Secret] = {}
        for user, password in pairs:
            key = _to_bytes(user)
            if key in entries:
                raise ValueError(f"duplicate user {key!r}")
            entries[key] = ScryptHash.create(_to_bytes(password), n=n)
        return cls(entries, default_cost=(n, DEFAULT_R, DEFAULT_P))

    @classmethod
    def parse_secret(cls, text: bytes) -> Secret:
        """Decode the part after ``user:`` (subclasses may accept other forms)."""
        return ScryptHash.parse(text)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Self:
        """Read a credentials file; refuse an unsafe (see ``read_credentials_file``) or
        malformed one."""
        name = os.fspath(path)
        data, st = read_credentials_file(name)
        entries: dict[bytes, Secret] = {}
        for lineno, user, field in _credential_lines(name, data):
            if user in entries:
                raise CredentialsError(f"{name}:{lineno}: duplicate user {_show(user)}")
            try:
                entries[user] = cls.parse_secret(field)
            except ValueError as exc:
                raise CredentialsError(f"{name}:{lineno}: {exc}") from None
        costs = {s.cost for s in entries.values() if isinstance(s, ScryptHash)}
        if len(costs) > MAX_COSTS:
            raise CredentialsError(
                f"{name}: users are hashed at {len(costs)} different scrypt costs (at most "
                f"{MAX_COSTS}); re-add them with adduser at one cost")
        store = cls(entries)
        if st.st_mode & stat.S_IROTH:
            store.warnings.append(f"{name} is world-readable; chmod 600 it")
        if not entries:
            store.warnings.append(f"{name} has no users; every request will be denied")
        return store

    def __len__(self) -> int:
        return len(self._entries)

    def has_user(self, user: bytes) -> bool:
        """Whether ``user`` is known (for logs and tests; never for replies)."""
        return user in self._entries

    def verify(self, user: bytes, password: bytes) -> bool:
        """Whether the pair is valid; every call runs the same scrypt work (see class)."""
        secret = self._entries.get(user)
        matched = False
        for dummy in self._dummies:
            if isinstance(secret, ScryptHash) and secret.cost == dummy.cost:
                matched = secret.check(password)
            else:
                dummy.check(password)
        if secret is not None and not isinstance(secret, ScryptHash):
            matched = secret.check(password)  # another verifier (a subclass's choice)
        return secret is not None and matched and bool(password)


def credentials_file_problem(st: os.stat_result) -> str | None:
    """Why a credentials file with this status must not be used, or None.

    Whoever can write the file can add a ``root`` entry, so only root or the server's
    own uid may own it, and neither its group nor others may write it.
    """
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    if st.st_uid not in (0, os.geteuid()):
        return (f"owned by uid {st.st_uid}, not by root or the server's uid "
                f"{os.geteuid()} (its owner could add users)")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"group- or world-writable (mode {stat.S_IMODE(st.st_mode):04o}); chmod 600 it"
    if st.st_size > MAX_CREDENTIALS_BYTES:
        return f"larger than {MAX_CREDENTIALS_BYTES} bytes"
    return None


def read_credentials_file(name: str) -> tuple[bytes, os.stat_result]:
    """The content and status of a safe credentials file; CredentialsError otherwise.

    Opened without following a symlink and without blocking (a FIFO would block a
    plain open), then checked on the open descriptor, so the file checked is the file
    read.
    """
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
    try:
        fd = os.open(name, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise CredentialsError(f"{name}: is a symbolic link; refusing it") from None
        if exc.errno == errno.ENXIO:  # a socket
            raise CredentialsError(f"{name}: not a regular file; refusing it") from None
        if exc.errno == errno.ENOENT:
            raise CredentialsMissingError(f"{name}: cannot read: {exc.strerror}") from None
        raise CredentialsError(f"{name}: cannot read: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        problem = credentials_file_problem(st)
        if problem:
            raise CredentialsError(f"{name}: {problem}; refusing it")
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_CREDENTIALS_BYTES and (chunk := os.read(fd, 1 << 16)):
            chunks.append(chunk)
            size += len(chunk)
        if size > MAX_CREDENTIALS_BYTES:
            raise CredentialsError(f"{name}: larger than {MAX_CREDENTIALS_BYTES} bytes")
    except OSError as exc:
        raise CredentialsError(f"{name}: cannot read: {exc.strerror}") from None
    finally:
        os.close(fd)
    return b"".join(chunks), st


def _credential_lines(name: str, data: bytes) -> Iterator[tuple[int, bytes, bytes]]:
    """(line number, user, secret text) for each entry of a credentials file."""
    for lineno, line in enumerate(data.split(b"\n"), 1):
        if not line.strip() or line.startswith(b"#"):
            continue
        user, sep, field = line.partition(b":")
        if not sep:
            raise CredentialsError(f"{name}:{lineno}: expected user:hash")
        problem = user_problem(user)
        if problem:
            raise CredentialsError(f"{name}:{lineno}: {problem}")
        yield lineno, user, field


#: Keys the digests of user fields that are not logged in clear.  Per process, so a
#: reader can match repeats within one log, but nobody can test guessed passwords
#: against a digest offline (an unkeyed hash of a short secret could be).
_LOG_KEY = os.urandom(32)


def log_user(user: bytes | None) -> str:
    """A user field for a log line, never a password typed into it.

    In clear (quoted) only if it is at most ``LOG_USER_MAX`` bytes of printable UTF-8
    with no whitespace, quote or backslash; anything else (``alice s3cret`` of a
    misframed request, control bytes, a long line) as a short keyed digest.
    """
    if user is None:
        return "-"
    try:
        text = user.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if (text is not None and len(user) <= LOG_USER_MAX and text.isprintable()
            and not any(c.isspace() or c in '"\\' for c in text)):
        return f'"{text}"'
    return "hmac:" + hmac.new(_LOG_KEY, user, hashlib.sha256).hexdigest()[:8]


def _show(user: bytes | None, limit: int = 64) -> str:
    """A user name for a log line: quoted, escaped, truncated to ``limit`` bytes."""
    if user is None:
        return "-"
    text = "".join(
        chr(b) if 0x20 <= b < 0x7F and b not in b'"\\' else f"\\x{b:02x}" for b in user[:limit]
    )
    more = f"...(+{len(user) - limit} bytes)" if len(user) > limit else ""
    return f'"{text}"{more}'


# --------------------------------------------------------------------------- server


@dataclass
class ConnectionInfo:
    """What one connection's log line reports (never the password)."""

    started: float
    pid: int | None = None
    uid: int | None = None
    user: bytes | None = None
    granted: bool = False
    reason: str | None = None
    #: The result of ``check_peer`` once it ran (None: not checked yet).
    peer_allowed: bool | None = None


class RefusalLog:
    """Logs refused connections, at most ``per_second`` lines a second.

    A peer that is refused (wrong uid, no free slot) costs one log line at most; past the
    limit refusals are only counted, and one summary line reports them once the second
    is over (``flush``), so a local flood cannot fill the disk through the log.
    """

    def __init__(self, log: logging.Logger, per_second: int = 5,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.log = log
        self.per_second = per_second
        self.clock = clock
        self._lock = threading.Lock()
        self._window = -float("inf")
        self._shown = 0
        self._suppressed = 0

    def refused(self, message: str) -> None:
        """Log (or count) one refusal."""
        with self._lock:
            self._roll(self.clock())
            if self._shown < self.per_second:
                self._shown += 1
                self.log.warning("refused %s", message)
            else:
                self._suppressed += 1

    def flush(self) -> float | None:
        """Log the summary of a finished second; return seconds until one is due, or
        None when nothing is held back."""
        with self._lock:
            now = self.clock()
            self._roll(now)
            return None if not self._suppressed else max(0.0, self._window + 1.0 - now)

    def _roll(self, now: float) -> None:
        if now - self._window < 1.0:
            return
        if self._suppressed:
            self.log.warning("... and %d more connection(s) refused in %.1f s",
                             self._suppressed, now - self._window)
        self._window, self._shown, self._suppressed = now, 0, 0


_UNSET = object()


def default_max_per_uid(max_clients: int) -> int:
    """Half the slots (at least one): one peer uid always leaves room for the others."""
    return max(1, max_clients // 2)


class RedirectorServer:
    """A threaded pam_redirector auth server.

    Each hook has one job, so a variant (or a faulty server) overrides one method:
    ``bind``, ``check_peer``, ``read_request``, ``authenticate``, ``reply``,
    ``handle`` (the per-connection flow) and ``dispatch`` (peer check and threading).
    """

    #: How long in-flight connections may take after a stop request.
    shutdown_grace = 2.0
    #: Timeout of the reply write.
    reply_timeout = 1.0
    #: Longest single wait of the accept loop.  A stop signal that lands on another
    #: thread, or just before select() starts, does not interrupt select(); its handler
    #: runs once select() returns, so this bounds how late a stop can be seen.
    signal_poll = 1.0
    backlog = 128

    def __init__(
        self,
        socket_path: str | os.PathLike[str],
        store: CredentialStore,
        *,
        allow_uids: Iterable[int] | None = frozenset({0}),
        idle_timeout: float | None = 5.0,
        field_limit: int = 4096,
        max_clients: int = 256,
        max_per_uid: int | None = None,
        socket_mode: int = 0o600,
        allow_unsafe_dir: bool = False,
        log: logging.Logger | None = None,
    ) -> None:
        if idle_timeout is not None and idle_timeout <= 0:
            raise ValueError("idle_timeout must be positive (or None for no timeout)")
        if field_limit < 1 or max_clients < 1 or not 0 <= socket_mode <= 0o777:
            raise ValueError("field_limit and max_clients must be >= 1, socket_mode <= 0o777")
        if max_per_uid is None:
            max_per_uid = default_max_per_uid(max_clients)
        if not 1 <= max_per_uid <= max_clients:
            raise ValueError("max_per_uid must be between 1 and max_clients")
        self.socket_path = os.fspath(socket_path)
        self.store = store
        #: None accepts every peer uid (not recommended).
        self.allow_uids = None if allow_uids is None else frozenset(allow_uids)
        self.idle_timeout = idle_timeout
        self.field_limit = field_limit
        self.max_clients = max_clients
        #: Connections one peer uid may hold at once (below max_clients by default, so
        #: one local uid cannot take every slot from the others).
        self.max_per_uid = max_per_uid
        self.socket_mode = socket_mode
        self.allow_unsafe_dir = allow_unsafe_dir
        self.log = log or _log
        self._listener: socket.socket | None = None
        self._identity: tuple[int, int] | None = None
        self._busy = 0
        self._busy_by_uid: dict[int | None, int] = {}
        self._slot_lock = threading.Lock()
        self.refusals = RefusalLog(self.log)
        self._cond = threading.Condition()
        self._active: set[socket.socket] = set()
        self._stop = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_w.setblocking(False)
        self._local = threading.local()
        self._thread: threading.Thread | None = None

    # -- life cycle -------------------------------------------------------------

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    @property
    def stopping(self) -> bool:
        """True once a stop was requested."""
        return self._stop.is_set()

    def start(self) -> None:
        """Bind and listen, then serve in a daemon thread; return once listening."""
        if self._thread is not None:
            raise RuntimeError("server already started")
        self._ensure_bound()
        self._thread = threading.Thread(target=self.serve_forever, name="redirector-accept",
                                        daemon=True)
        self._thread.start()

    def request_stop(self) -> None:
        """Ask the accept loop to stop (safe to call from a signal handler)."""
        self._stop.set()
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    def shutdown(self) -> None:
        """Stop a server run by ``start``: stop accepting, let in-flight connections
        finish (``shutdown_grace``), remove the socket."""
        self.request_stop()
        if self._thread is not None:
            self._thread.join(self.shutdown_grace + 2.0)
        else:  # bound but never served
            self._close_listener()
            self._close_wake()

    def serve_forever(self) -> None:
        """Accept and dispatch connections until ``request_stop``; then clean up."""
        listener = self._ensure_bound()
        threading.Thread(target=self._watchdog, name="redirector-watchdog", daemon=True).start()
        self.log.info("listening on %s (%d users, allowed uids %s)", self.socket_path,
                      len(self.store), "any" if self.allow_uids is None
                      else ",".join(map(str, sorted(self.allow_uids))))
        try:
            while not self._stop.is_set():
                due = self.refusals.flush()
                wait = self.signal_poll if due is None else min(due, self.signal_poll)
                ready, _, _ = select.select([listener, self._wake_r], [], [], wait)
                if listener not in ready or self._stop.is_set():
                    continue
                try:
                    conn, _ = listener.accept()
                except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                    continue
                except OSError as exc:  # e.g. EMFILE: back off instead of spinning
                    self.log.error("accept failed: %s", exc.strerror)
                    time.sleep(0.1)
                    continue
                self.dispatch(conn)
        finally:
            self._close_listener()
            with self._cond:
                self._cond.wait_for(lambda: not self._active, self.shutdown_grace + 1.0)
                stragglers = list(self._active)
            # Their handler threads die with the process: deny them now, or the client
            # reads a bare close, which the original module takes for a grant.
            for conn in stragglers:
                with contextlib.suppress(OSError):
                    conn.setblocking(False)
                    conn.send(DENY)
                    conn.shutdown(socket.SHUT_RDWR)
            self._close_wake()
            self.refusals.flush()
            self.log.info("stopped")

    def _close_wake(self) -> None:
        self._wake_r.close()
        self._wake_w.close()

    def _ensure_bound(self) -> socket.socket:
        if self._listener is None:
            self._listener = self.bind()
            st = os.lstat(self.socket_path)
            self._identity = (st.st_dev, st.st_ino)
            self._listener.setblocking(False)
        return self._listener

    def _close_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is None:
            return
        # Deny whoever is still queued: a bare close reads as a grant in the original module.
        with contextlib.suppress(OSError):
            while True:
                conn, _ = listener.accept()
                self._refuse(conn)
        listener.close()
        with contextlib.suppress(OSError):
            st = os.lstat(self.socket_path)
            if (st.st_dev, st.st_ino) == self._identity:
                os.unlink(self.socket_path)

    def _watchdog(self) -> None:
        """After a stop request, end the reads of connections still open after the grace.

        Shutting down only the read side lets their handlers still send the denial.
        """
        self._stop.wait()
        with self._cond:
            if self._cond.wait_for(lambda: not self._active, self.shutdown_grace):
                return
            stragglers = list(self._active)
        self.log.warning("closing %d connection(s) still open at shutdown", len(stragglers))
        for conn in stragglers:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RD)

    # -- hooks -------------------------------------------------------------------

    def bind(self) -> socket.socket:
        """Create, bind and listen on the socket, refusing unsafe paths."""
        path = self.socket_path
        raw = os.fsencode(path)
        if not raw or b"\0" in raw or len(raw) > SUN_PATH_MAX:
            raise ServerError(f"{path}: socket path must be 1..{SUN_PATH_MAX} bytes, no NUL")
        parent = os.path.dirname(os.path.abspath(path))
        try:
            pst = os.stat(parent)
        except OSError as exc:
            raise ServerError(f"{parent}: {exc.strerror}") from None
        if not stat.S_ISDIR(pst.st_mode):
            raise ServerError(f"{parent}: not a directory")
        if not self.allow_unsafe_dir:
            if pst.st_mode & (stat.S_IWOTH | stat.S_IWGRP):
                # a member of the group could rename the socket away and bind its own
                raise ServerError(f"{parent}: directory is group- or world-writable (mode "
                                  f"{stat.S_IMODE(pst.st_mode):04o}; use a directory only "
                                  "its owner can write, or --allow-unsafe-dir)")
            if pst.st_uid not in (0, os.geteuid()):
                raise ServerError(f"{parent}: directory is owned by uid {pst.st_uid}")
        self._remove_stale(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            old_umask = os.umask(0o777 & ~self.socket_mode)
            try:
                sock.bind(path)
            finally:
                os.umask(old_umask)
            os.chmod(path, self.socket_mode)  # exact mode, before anyone can connect
            sock.listen(self.backlog)
        except OSError as exc:
            sock.close()
            raise ServerError(f"{path}: cannot bind: {exc.strerror}") from None
        return sock

    @staticmethod
    def _remove_stale(path: str) -> None:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if stat.S_ISLNK(st.st_mode):
            raise ServerError(f"{path}: is a symbolic link; refusing")
        if not stat.S_ISSOCK(st.st_mode):
            raise ServerError(f"{path}: exists and is not a socket; refusing")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(0.5)
            try:
                probe.connect(path)
            except ConnectionRefusedError:
                os.unlink(path)  # stale socket of a dead server
                return
            except OSError as exc:
                raise ServerError(f"{path}: existing socket: {exc.strerror}") from None
        raise ServerError(f"{path}: another server is listening there")

    def dispatch(self, conn: socket.socket) -> None:
        """Check the peer, then serve ``conn`` in a worker thread if a slot is free.

        Runs in the accept thread: a refused peer (uid not allowed, no free slot overall
        or for its uid) is denied and closed at once, never holding a slot.
        """
        info = ConnectionInfo(time.monotonic())
        self._local.info = info
        try:
            info.peer_allowed = self.check_peer(conn)
        finally:
            self._local.info = None
        who = f"peer pid={'-' if info.pid is None else info.pid} " \
              f"uid={'-' if info.uid is None else info.uid}"
        if not info.peer_allowed:
            self._refuse(conn)
            self.refusals.refused(f"{who}: {info.reason or 'not allowed'}")
            return
        full = self._take_slot(info.uid)
        if full:
            self._refuse(conn)
            self.refusals.refused(f"{who}: {full}")
            return
        try:
            threading.Thread(target=self._worker, args=(conn, info), daemon=True).start()
        except RuntimeError:
            self._release_slot(info.uid)
            self._refuse(conn)

    def _take_slot(self, uid: int | None) -> str | None:
        """Take a client slot for ``uid``; None on success, else why not."""
        with self._slot_lock:
            if self._busy >= self.max_clients:
                return f"{self.max_clients} clients busy"
            held = self._busy_by_uid.get(uid, 0)
            if held >= self.max_per_uid:
                return f"uid already holds {held} connections (--max-per-uid)"
            self._busy += 1
            self._busy_by_uid[uid] = held + 1
            return None

    def _release_slot(self, uid: int | None) -> None:
        with self._slot_lock:
            self._busy -= 1
            left = self._busy_by_uid.pop(uid, 1) - 1
            if left:
                self._busy_by_uid[uid] = left

    @property
    def busy(self) -> int:
        """How many connections hold a client slot now."""
        with self._slot_lock:
            return self._busy

    def _worker(self, conn: socket.socket, info: ConnectionInfo) -> None:
        try:
            self.serve_connection(conn, info)
        finally:
            self._release_slot(info.uid)

    @staticmethod
    def _refuse(conn: socket.socket) -> None:
        """Deny without waiting: reply ``1`` if the socket takes it, then close."""
        with contextlib.suppress(OSError):
            conn.setblocking(False)
            conn.send(DENY)
            # Unread request bytes would make the close a reset, which can hide the "1".
            conn.recv(RECV_SIZE)
        conn.close()

    def serve_connection(self, conn: socket.socket, info: ConnectionInfo | None = None) -> None:
        """Track ``conn`` as in flight, run ``handle`` on it, log one line."""
        info = info or ConnectionInfo(time.monotonic())
        self._local.info = info
        with self._cond:
            self._active.add(conn)
        try:
            self.handle(conn)
        except Exception as exc:
            tb = exc.__traceback__
            while tb is not None and tb.tb_next is not None:
                tb = tb.tb_next
            where = f"line {tb.tb_lineno}" if tb else "?"
            self.log.error("connection handler failed: %s at %s", type(exc).__name__, where)
            info.granted = False
            info.reason = info.reason or "internal error"
        finally:
            with contextlib.suppress(OSError):
                conn.close()
            with self._cond:
                self._active.discard(conn)
                self._cond.notify_all()
            self._local.info = None
            self.log_connection(info)

    def connection_info(self) -> ConnectionInfo:
        """The record of the connection served by the calling thread."""
        info = getattr(self._local, "info", None)
        if info is None:  # a hook called outside serve_connection (tests)
            info = self._local.info = ConnectionInfo(time.monotonic())
        return info

    def note(self, reason: str) -> None:
        """Record why the current connection is denied (the first reason wins)."""
        info = self.connection_info()
        info.reason = info.reason or reason

    def log_connection(self, info: ConnectionInfo) -> None:
        """Write the one log line of a finished connection."""
        result = "granted" if info.granted else f"denied ({info.reason or 'bad credentials'})"
        self.log.info("peer pid=%s uid=%s user=%s %s in %.3fs",
                      "-" if info.pid is None else info.pid,
                      "-" if info.uid is None else info.uid,
                      log_user(info.user), result, time.monotonic() - info.started)

    def handle(self, conn: socket.socket) -> None:
        """Check the peer, read the request, authenticate, reply (closing is done after)."""
        info = self.connection_info()
        granted = False
        try:
            if info.peer_allowed is None:  # not checked by dispatch (a variant's own)
                info.peer_allowed = self.check_peer(conn)
            if not info.peer_allowed:
                return  # deny at once, without reading
            request = self.read_request(conn)
            if request is not None:
                granted = self.authenticate(*request)
        finally:
            info.granted = granted
            self.reply(conn, granted)

    def check_peer(self, conn: socket.socket) -> bool:
        """Whether the peer's uid (SO_PEERCRED) is allowed; records pid and uid."""
        info = self.connection_info()
        fmt = "3i"
        try:
            raw = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize(fmt))
            info.pid, info.uid, _gid = struct.unpack(fmt, raw)
        except (OSError, AttributeError):
            if self.allow_uids is None:
                return True
            self.note("peer credentials unavailable")
            return False
        if self.allow_uids is None or info.uid in self.allow_uids:
            return True
        self.note(f"peer uid {info.uid} not allowed")
        return False

    def read_request(self, conn: socket.socket) -> tuple[bytes, bytes] | None:
        """The (user, password) of a well-formed request, or None (reason noted)."""
        fields = self.receive_fields(conn)
        if fields is None:
            return None
        problem = self.request_problem(*fields)
        if problem:
            self.note(problem)
            return None
        return fields

    def request_problem(self, user: bytes, password: bytes) -> str | None:
        """Why a framed request is refused before any password check, or None."""
        if not user:
            return "empty user"
        if b"\0" in user or b"\0" in password:
            return "NUL byte"
        if b"\r" in user or b"\r" in password:
            return "CR byte"
        return None

    def receive_fields(
        self,
        conn: socket.socket,
        *,
        field_limit: object = _UNSET,
        allow_trailing: bool = False,
    ) -> tuple[bytes, bytes] | None:
        """Read up to the second newline within the idle timeout and the field limit.

        Returns the two fields, or None (reason noted) on timeout, EOF, an over-long
        field, or bytes after the second newline (unless ``allow_trailing``).  It answers
        as soon as the second newline is read: only bytes that came with the request
        (in the reads that completed it) are judged, nothing written later is awaited.
        """
        limit = self.field_limit if field_limit is _UNSET else field_limit
        assert limit is None or isinstance(limit, int)
        deadline = None if self.idle_timeout is None else time.monotonic() + self.idle_timeout
        fields: list[bytes] = []
        buf = bytearray()
        while True:
            while len(fields) < 2 and (nl := buf.find(b"\n")) >= 0:
                fields.append(bytes(buf[:nl]))
                del buf[: nl + 1]
                if len(fields) == 1:
                    self.connection_info().user = fields[0]
            if limit is not None and any(len(f) > limit for f in (*fields, buf)):
                self.note("field too long")
                return None
            if len(fields) == 2:
                break
            chunk = self._recv(conn, deadline)
            if chunk is None:
                return None
            if not chunk:
                self.note("missing lines" if fields or buf else "empty request")
                return None
            buf += chunk
        if not allow_trailing and buf:
            self.note("bytes after the second newline")
            return None
        return fields[0], fields[1]

    def _recv(self, conn: socket.socket, deadline: float | None) -> bytes | None:
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            self.note("idle timeout")
            return None
        try:
            conn.settimeout(remaining)
            return conn.recv(RECV_SIZE)
        except TimeoutError:
            self.note("idle timeout")
        except OSError as exc:
            self.note(f"receive error ({errno.errorcode.get(exc.errno or 0, exc.errno)})")
        return None

    def authenticate(self, user: bytes, password: bytes) -> bool:
        """Whether the exact bytes of user and password are valid."""
        granted = self.store.verify(user, password)
        if not granted:
            self.note("bad credentials")
        return granted

    def reply(self, conn: socket.socket, granted: bool) -> None:
        """Send the single reply: ``0`` to grant, ``1`` to deny."""
        try:
            conn.settimeout(self.reply_timeout)
            conn.sendall(GRANT if granted else DENY)
        except OSError:
            self.note("client gone before the reply")


# --------------------------------------------------------------------------- CLI


def run_until_signalled(server: RedirectorServer) -> int:
    """Serve until SIGTERM or SIGINT, then shut down cleanly; return the exit status."""

    def on_signal(signum: int, frame: object) -> None:
        server.request_stop()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.serve_forever()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def configure_logging(quiet: bool = False) -> logging.Logger:
    """Send the server's log to stderr (errors only when ``quiet``)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(
        "%(asctime)s redirector_server[%(process)d] %(levelname)s %(message)s",
        "%Y-%m-%dT%H:%M:%S%z"))
    _log.handlers[:] = [handler]
    _log.setLevel(logging.ERROR if quiet else logging.INFO)
    _log.propagate = False
    return _log


def read_password() -> bytes:
    """The password: the first stdin line (without its newline), or prompted twice."""
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != first:
            raise RedirectorError("passwords do not match")
        password = first.encode("utf-8", "surrogateescape")
    else:
        line = sys.stdin.buffer.readline()
        if not line:
            raise RedirectorError("no password on standard input")
        password = line[:-1] if line.endswith(b"\n") else line
    problem = password_problem(password)
    if problem:
        raise RedirectorError(problem)
    return password


def read_for_adduser(path: str) -> tuple[bytes, os.stat_result | None]:
    """The content and status of the credentials file ``adduser`` is to rewrite, checked
    as ``serve`` checks it, with its entries' syntax; (b"", None) if it does not exist yet
    in an existing directory.  RedirectorError for anything else."""
    try:
        data, st = read_credentials_file(path)
    except CredentialsMissingError:
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            raise RedirectorError(f"{directory}: no such directory") from None
        return b"", None
    for _ in _credential_lines(path, data):
        pass
    return data, st


def add_user(path: str, user: bytes, password: bytes, *, n: int = DEFAULT_N) -> bool:
    """Add or replace ``user`` in the credentials file (atomically); True if replaced.

    The file must not exist yet or pass the checks ``serve`` makes (``read_credentials_file``:
    no symlink, FIFO, device, directory or socket, no other owner, not group- or
    world-writable, size bounded); anything else is a RedirectorError.  The new content is
    written to a 0600 temporary file in the same directory, then renamed over ``path``, so
    the result is always mode 0600 (the hashes are secrets), with the old file's owner when
    that can be kept; the temporary file is removed on any failure.
    """
    problem = user_problem(user)
    if problem:
        raise RedirectorError(problem)
    data, old = read_for_adduser(path)
    directory = os.path.dirname(os.path.abspath(path))
    entry = user + b":" + hash_password(password, n=n).encode()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    positions = {u: lineno - 1 for lineno, u, _ in _credential_lines(path, data)}
    replaced = user in positions
    if replaced:
        lines[positions[user]] = entry
    else:
        lines.append(entry)
    try:
        fd, tmp = tempfile.mkstemp(prefix=".credentials-", dir=directory)  # mode 0600
    except OSError as exc:
        raise RedirectorError(f"{directory}: cannot create a file: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o600)
            if old is not None:  # root's or our own file (checked): keep its owner
                with contextlib.suppress(OSError):
                    os.fchown(f.fileno(), old.st_uid, old.st_gid)
            f.write(b"\n".join(lines) + b"\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise RedirectorError(f"{path}: cannot write: {exc.strerror}") from None
        raise
    return replaced


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value <= 86400:
        raise argparse.ArgumentTypeError(f"must be > 0 seconds: {text!r}")
    return value


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"not a positive integer: {text!r}")
    return int(text)


def _mode(text: str) -> int:
    try:
        value = int(text, 8)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an octal mode: {text!r}") from None
    if not 0 <= value <= 0o777:
        raise argparse.ArgumentTypeError(f"mode out of range: {text!r}")
    return value


def _uid(text: str) -> int:
    if text.isdigit():
        return int(text)
    try:
        return pwd.getpwnam(text).pw_uid
    except KeyError:
        raise argparse.ArgumentTypeError(f"no such user: {text!r}") from None


def _scrypt_n(text: str) -> int:
    value = _positive_int(text)
    if value < 2**10 or value > MAX_N or value & (value - 1):
        raise argparse.ArgumentTypeError(f"N must be a power of two in 1024..{MAX_N}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser."""
    parser = _Parser(prog="redirector_server",
                     description="Reference pam_redirector auth server.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    serve = sub.add_parser(
        "serve", help="serve requests on a UNIX socket",
        description="Serve pam_redirector requests (USER\\nPASSWORD\\n in, 0 or 1 out) on "
        "SOCKET until SIGTERM or SIGINT; one log line per connection on stderr.")
    serve.add_argument("socket", metavar="SOCKET", help="socket path to create (mode 0600)")
    serve.add_argument("--credentials", required=True, metavar="FILE",
                       help="user:scrypt$... lines written by adduser; must be a regular "
                       "file owned by root (or this uid), not group- or world-writable")
    serve.add_argument("--allow-uid", type=_uid, action="append", metavar="UID",
                       help="client uid (or user name) to serve; repeatable; default 0")
    serve.add_argument("--idle-timeout", type=_positive_float, default=5.0, metavar="S",
                       help="seconds a client has to send the whole request (default 5)")
    serve.add_argument("--field-limit", type=_positive_int, default=4096, metavar="N",
                       help="longest user or password in bytes (default 4096)")
    serve.add_argument("--max-clients", type=_positive_int, default=256, metavar="N",
                       help="connections served at once (default 256)")
    serve.add_argument("--max-per-uid", type=_positive_int, metavar="N",
                       help="connections one client uid may hold at once (default: half "
                       "of --max-clients)")
    serve.add_argument("--socket-mode", type=_mode, default=0o600, metavar="MODE",
                       help="octal mode of the socket (default 0600)")
    serve.add_argument("--allow-unsafe-dir", action="store_true",
                       help="allow a group- or world-writable or foreign-owned socket "
                       "directory")
    serve.add_argument("--quiet", action="store_true", help="log errors only")
    add = sub.add_parser("adduser", help="add or replace a user (password on stdin)")
    add.add_argument("file", metavar="FILE",
                     help="credentials file to create or update (rewritten mode 0600; "
                     "refused as serve refuses it: a symlink, not a regular file, ...)")
    add.add_argument("user", metavar="USER")
    hsh = sub.add_parser("hash", help="print a hash of the password on stdin")
    for p in (add, hsh):
        p.add_argument("--scrypt-n", type=_scrypt_n, default=DEFAULT_N, metavar="N",
                       help=f"scrypt cost (default {DEFAULT_N}; lower only for tests)")
    return parser


def _serve(args: argparse.Namespace) -> int:
    if args.max_per_uid is not None and args.max_per_uid > args.max_clients:
        raise RedirectorError("--max-per-uid must not exceed --max-clients")
    log = configure_logging(args.quiet)
    store = CredentialStore.load(args.credentials)
    for warning in store.warnings:
        log.warning("%s", warning)
    if args.socket_mode & 0o002:
        log.warning("socket mode %04o lets any local user connect", args.socket_mode)
    server = RedirectorServer(
        args.socket, store, allow_uids=frozenset(args.allow_uid or [0]),
        idle_timeout=args.idle_timeout, field_limit=args.field_limit,
        max_clients=args.max_clients, socket_mode=args.socket_mode,
        max_per_uid=args.max_per_uid,
        allow_unsafe_dir=args.allow_unsafe_dir, log=log)
    return run_until_signalled(server)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "hash":
            print(hash_password(read_password(), n=args.scrypt_n))
            return 0
        user = os.fsencode(args.user)
        problem = user_problem(user)
        if problem:  # before asking for a password
            raise RedirectorError(problem)
        read_for_adduser(args.file)  # refuse an unusable file before asking
        password = read_password()
        replaced = add_user(args.file, user, password, n=args.scrypt_n)
        print(f"{'replaced' if replaced else 'added'} {args.user} in {args.file}",
              file=sys.stderr)
        return 0
    except RedirectorError as exc:
        print(f"redirector_server: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
