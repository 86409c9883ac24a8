#!/usr/bin/env python3
"""Reference transient-token server (Python standard library only).

Run it as the user who wants to log in.  It prints one token on stdout,

    TTK<uid>:<pid>:<32 base64 characters>

then goes to the background and waits (``--timeout``, 60 s by default) for ONE
connection on the UNIX socket ``/tmp/transient-token-<uid>-<pid>``, where ``<uid>`` is
the caller's uid and ``<pid>`` the pid of the background process that serves the token
(so the path is derived from the token alone, and ``kill <pid>`` revokes it).  The PAM
side (pam_transient_token, running as root) connects, writes the whole token with no
newline and reads six bytes: ``PASS\\n\\0`` if the token is right, ``FAIL\\n\\0``
otherwise.  Then the server removes its socket and exits: the token is dead.

It follows rules T-S1..T-S4 of the profile (docs/protocols.md):

* T-S1 only the exact full token is accepted (no prefix, suffix or case change), and
  only once: the first connection consumes the token whatever happens on it (a right
  or wrong token, a silent client, a refused peer), and it expires after ``--timeout``.
* T-S2 the comparison is ``hmac.compare_digest`` over equal-length inputs (another
  length is a refusal); at most 128 bytes are read, and the whole attempt must arrive
  within ``--idle-timeout`` (5 s) of the connection, so a silent or trickling client
  is cut off.
* T-S3 the socket is created with mode 0600 (umask set before bind), owned by the
  user; an existing path is refused unless it is a stale socket of our own uid; the
  socket is unlinked on every exit (use, timeout, SIGTERM/SIGINT/SIGHUP).
* T-S4 the peer's uid (``SO_PEERCRED``) must be allowed: 0 (root, the PAM side) by
  default; ``--allow-uid`` (repeatable) replaces that list.  A peer that is not
  allowed gets ``FAIL`` and consumes the token (single use is simplest and safest:
  only the user and root can reach a 0600 socket, so only they can spend it).

The secret part of the token is never logged.  Exit status: 0 the token was
accepted, 1 refused or expired or terminated, 2 usage or start-up error (the
daemonising parent exits 0 once the token is printed, 2 if the server could not start).
"""

# Shared with servers/redirector_server.py, on purpose as a copy: the socket set-up (bind with a
# umask, exact mode, refusal of a path that is not our own stale socket), the SO_PEERCRED
# read of the peer's uid, signal-driven shutdown, logging set-up and the argument types
# (_Parser exiting 2, seconds, uids). Not moved into a common module because each server
# is a standalone drop-in: one file run on a bare python3 (in the lab's containers, on a
# host that has no pamconform, and imported by file path by the tests' faulty servers),
# where a sibling import would not resolve. A fix to one of them must be checked in the
# other (and in servers/scenario_server.py, which shares the socket set-up).

import argparse
import base64
import contextlib
import errno
import hmac
import logging
import os
import pwd
import re
import secrets
import select
import signal
import socket
import stat
import struct
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NoReturn, Self

PASS_REPLY = b"PASS\n\0"
FAIL_REPLY = b"FAIL\n\0"
SOCKET_DIR = "/tmp"
SOCKET_PREFIX = "transient-token"
DEFAULT_TIMEOUT = 60.0
DEFAULT_IDLE_TIMEOUT = 5.0
#: Never read more than this from a client (a token is at most 57 bytes).
MAX_READ = 128
SECRET_BYTES = 24  # 32 base64 characters, no padding
SUN_PATH_MAX = 107
#: How long the daemonising parent waits for the background server to be listening.
START_TIMEOUT = 10.0
#: Longest single wait for a connection, so a stop signal is seen within it.
SIGNAL_POLL_S = 1.0

TOKEN_RE = re.compile(r"TTK(0|[1-9][0-9]{0,9}):([1-9][0-9]{0,9}):([A-Za-z0-9+/]{32})")

_log = logging.getLogger("token_server")


class TokenServerError(Exception):
    """A configuration or start-up problem, reported as one line (exit status 2)."""


class Terminated(Exception):
    """SIGTERM, SIGINT or SIGHUP arrived."""


@dataclass(frozen=True)
class Token:
    """A transient token: ``TTK<uid>:<pid>:<auth>``.

    >>> Token(1000, 42, "A" * 32).text
    'TTK1000:42:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'
    """

    uid: int
    pid: int
    auth: str

    @classmethod
    def fresh(cls, uid: int, pid: int) -> Self:
        """A token with 24 random bytes from ``secrets``, base64 (standard alphabet)."""
        return cls(uid, pid, base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode())

    @classmethod
    def parse(cls, text: str) -> Self:
        """Parse the exact token syntax; raise ValueError otherwise."""
        match = TOKEN_RE.fullmatch(text)
        if match is None:
            raise ValueError("not a token (TTK<uid>:<pid>:<32 base64 characters>)")
        return cls(int(match.group(1)), int(match.group(2)), match.group(3))

    @property
    def text(self) -> str:
        return f"TTK{self.uid}:{self.pid}:{self.auth}"

    @property
    def raw(self) -> bytes:
        return self.text.encode("ascii")

    def socket_path(self, directory: str = SOCKET_DIR) -> str:
        """Where the server of this token listens: ``<dir>/transient-token-<uid>-<pid>``."""
        return os.path.join(directory, f"{SOCKET_PREFIX}-{self.uid}-{self.pid}")

    def public(self) -> str:
        """The token with its secret part hidden, for logs."""
        return f"TTK{self.uid}:{self.pid}:<secret>"


def peer_credentials(conn: socket.socket) -> tuple[int, int, int]:
    """(pid, uid, gid) of the process at the other end (``SO_PEERCRED``)."""
    size = struct.calcsize("3i")
    raw = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, size)
    pid, uid, gid = struct.unpack("3i", raw)
    return pid, uid, gid


class TokenServer:
    """Serves one token on one socket, once.

    Each hook has one job, so a variant (or a faulty server) overrides one method:
    ``bind``, ``retire`` (what the first connection does to the listener),
    ``check_peer``, ``receive``, ``matches``, ``reply`` and ``handle``.
    """

    #: After the expected number of bytes, how long to wait for bytes that would make
    #: the attempt too long (a suffix sent in a second write).
    trailing_grace = 0.05
    #: Timeout of the reply write.
    reply_timeout = 1.0
    backlog = 1

    def __init__(
        self,
        token: Token,
        socket_path: str,
        *,
        timeout: float | None = DEFAULT_TIMEOUT,
        idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
        allow_uids: Iterable[int] = frozenset({0}),
        socket_mode: int = 0o600,
        max_read: int = MAX_READ,
        log: logging.Logger | None = None,
    ) -> None:
        self.token = token
        self.expected = token.raw
        self.socket_path = socket_path
        #: None: wait for a connection forever (not recommended).
        self.timeout = timeout
        #: None: no bound on how long one attempt may take (not recommended).
        self.idle_timeout = idle_timeout
        self.allow_uids = frozenset(allow_uids)
        self.socket_mode = socket_mode
        self.max_read = max_read
        self.log = log or _log
        self.listener: socket.socket | None = None
        self._identity: tuple[int, int] | None = None
        self.attempts = 0

    # -- life cycle -------------------------------------------------------------

    def __enter__(self) -> Self:
        self.listen()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def listen(self) -> None:
        """Create the socket (once)."""
        if self.listener is None:
            self.listener = self.bind()
            st = os.lstat(self.socket_path)
            self._identity = (st.st_dev, st.st_ino)

    def serve(self) -> bool:
        """Wait for the connection (until the timeout), handle it, clean up.

        Returns whether the token was accepted.  Always removes the socket.
        """
        granted = False
        try:
            self.listen()
            deadline = None if self.timeout is None else time.monotonic() + self.timeout
            self.log.info("serving %s on %s (expires in %s)", self.token.public(),
                          self.socket_path,
                          "never" if self.timeout is None else f"{self.timeout:g} s")
            while self.listener is not None:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    self.log.info("expired: no connection within %g s", self.timeout)
                    break
                # Bounded, so that a signal which does not interrupt select() (it landed
                # on another thread or just before the call) still stops us promptly.
                wait = SIGNAL_POLL_S if left is None else min(left, SIGNAL_POLL_S)
                ready, _, _ = select.select([self.listener], [], [], wait)
                if not ready:
                    continue
                try:
                    conn, _ = self.listener.accept()
                except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                    continue
                self.attempts += 1
                self.retire()  # the token is consumed before anything is read
                with conn:
                    granted = self.handle(conn)
        finally:
            self.close()
        return granted

    def retire(self) -> None:
        """Stop listening and remove the socket: nobody else may try this token."""
        self.close()

    def close(self) -> None:
        """Close the listener and unlink the socket if it is still ours."""
        listener, self.listener = self.listener, None
        if listener is not None:
            listener.close()
        if self._identity is not None:
            with contextlib.suppress(OSError):
                st = os.lstat(self.socket_path)
                if (st.st_dev, st.st_ino) == self._identity:
                    os.unlink(self.socket_path)
            self._identity = None

    # -- hooks -------------------------------------------------------------------

    def bind(self) -> socket.socket:
        """Create, bind and listen on the socket (mode 0600), refusing unsafe paths."""
        path = self.socket_path
        raw = os.fsencode(path)
        if not raw or b"\0" in raw or len(raw) > SUN_PATH_MAX:
            raise TokenServerError(f"{path}: socket path must be 1..{SUN_PATH_MAX} bytes")
        parent = os.path.dirname(os.path.abspath(path))
        try:
            pst = os.stat(parent)
        except OSError as exc:
            raise TokenServerError(f"{parent}: {exc.strerror}") from None
        if not stat.S_ISDIR(pst.st_mode):
            raise TokenServerError(f"{parent}: not a directory")
        if pst.st_mode & stat.S_IWOTH and not pst.st_mode & stat.S_ISVTX:
            raise TokenServerError(f"{parent}: world-writable without the sticky bit")
        self._remove_stale(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            old_umask = os.umask(0o777 & ~self.socket_mode)
            try:
                sock.bind(path)
            finally:
                os.umask(old_umask)
            os.chmod(path, self.socket_mode)
            st = os.lstat(path)
            if not stat.S_ISSOCK(st.st_mode) or st.st_uid != os.geteuid():
                raise TokenServerError(f"{path}: changed under us after bind")
            sock.listen(self.backlog)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            if exc.errno == errno.EADDRINUSE:
                raise TokenServerError(f"{path}: already exists") from None
            raise TokenServerError(f"{path}: cannot bind: {exc.strerror}") from None
        except BaseException:
            sock.close()
            raise
        return sock

    @staticmethod
    def _remove_stale(path: str) -> None:
        """Unlink a dead socket of our own uid at path; refuse anything else there."""
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if stat.S_ISLNK(st.st_mode):
            raise TokenServerError(f"{path}: is a symbolic link; refusing")
        if not stat.S_ISSOCK(st.st_mode):
            raise TokenServerError(f"{path}: exists and is not a socket; refusing")
        if st.st_uid != os.geteuid():
            raise TokenServerError(f"{path}: a socket owned by uid {st.st_uid} is already "
                                   "there (planted?); refusing")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(0.5)
            try:
                probe.connect(path)
            except ConnectionRefusedError:
                os.unlink(path)  # ours, and nobody listens: stale
                return
            except OSError as exc:
                raise TokenServerError(f"{path}: existing socket: {exc.strerror}") from None
        raise TokenServerError(f"{path}: another server is listening there")

    def handle(self, conn: socket.socket) -> bool:
        """One attempt: check the peer, read the token, compare, reply."""
        try:
            pid, uid, _ = peer_credentials(conn)
        except OSError as exc:
            self.log.warning("cannot read the peer's credentials: %s", exc.strerror)
            self.reply(conn, False)
            return False
        if not self.check_peer(uid):
            self.log.warning("refused a client with uid %d (pid %d): not an allowed uid "
                             "(%s); the token is spent", uid, pid,
                             ",".join(map(str, sorted(self.allow_uids))))
            self.reply(conn, False)
            return False
        received = self.receive(conn)
        granted = received is not None and self.matches(received)
        if granted:
            self.log.info("token accepted for client pid %d uid %d", pid, uid)
        elif received is not None:
            self.log.info("wrong token from client pid %d uid %d (%d bytes); the token "
                          "is spent", pid, uid, len(received))
        self.reply(conn, granted)
        return granted

    def check_peer(self, uid: int) -> bool:
        """Whether a client running as ``uid`` may present the token."""
        return uid in self.allow_uids

    def receive(self, conn: socket.socket) -> bytes | None:
        """Read the attempt: until the token's length, end of stream, or the limits.

        Returns None (a refusal) when the client sends more than ``max_read`` bytes or
        does not finish within ``idle_timeout`` of the connection.
        """
        deadline = None if self.idle_timeout is None else time.monotonic() + self.idle_timeout
        want = len(self.expected)
        data = b""
        while True:
            if len(data) >= want:
                wait: float | None = self.trailing_grace
            else:
                wait = None if deadline is None else deadline - time.monotonic()
            if wait is not None and wait <= 0:
                self.log.info("client sent %d bytes and nothing more within %g s; refused",
                              len(data), self.idle_timeout)
                return None
            ready, _, _ = select.select([conn], [], [], wait)
            if not ready:
                if len(data) >= want:
                    return data  # nothing more after the token's length
                continue
            try:
                chunk = conn.recv(self.max_read + 1 - len(data))
            except OSError as exc:
                self.log.info("client connection error: %s", exc.strerror)
                return None
            if not chunk:
                return data
            data += chunk
            if len(data) > self.max_read:
                self.log.info("client sent more than %d bytes; refused", self.max_read)
                return None

    def matches(self, received: bytes) -> bool:
        """The exact token, compared in constant time; another length never matches."""
        return len(received) == len(self.expected) and hmac.compare_digest(
            received, self.expected)

    def reply(self, conn: socket.socket, granted: bool) -> None:
        """Send ``PASS\\n\\0`` or ``FAIL\\n\\0`` and close our side."""
        with contextlib.suppress(OSError):
            conn.settimeout(self.reply_timeout)
            conn.sendall(PASS_REPLY if granted else FAIL_REPLY)
            conn.shutdown(socket.SHUT_RDWR)


# --------------------------------------------------------------------------- running

Factory = Callable[..., TokenServer]


def _on_signal(signum: int, frame: object) -> NoReturn:
    raise Terminated(signal.Signals(signum).name)


def run_server(server: TokenServer) -> int:
    """Serve until used, expired or signalled; exit status 0 only if the token was used."""
    previous = {sig: signal.signal(sig, _on_signal)
                for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    try:
        return 0 if server.serve() else 1
    except Terminated as exc:
        server.log.info("terminated by %s; socket removed", exc)
        return 1
    finally:
        server.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def configure_logging(stream: Any = None, quiet: bool = False) -> logging.Logger:
    """Log to ``stream`` (stderr by default); errors only when ``quiet``."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter(
        "%(asctime)s token_server[%(process)d] %(levelname)s %(message)s",
        "%Y-%m-%dT%H:%M:%S%z"))
    _log.handlers[:] = [handler]
    _log.setLevel(logging.ERROR if quiet else logging.INFO)
    _log.propagate = False
    return _log


def _socket_path(args: argparse.Namespace, token: Token) -> str:
    return args.socket or token.socket_path(args.socket_dir)


def _build(args: argparse.Namespace, factory: Factory, token: Token,
           log: logging.Logger) -> TokenServer:
    return factory(token, _socket_path(args, token), timeout=args.timeout,
                   idle_timeout=args.idle_timeout,
                   allow_uids=frozenset(args.allow_uid if args.allow_uid else [0]), log=log)


def _print_token(token: Token) -> None:
    sys.stdout.write(token.text + "\n")
    sys.stdout.flush()


def run_foreground(args: argparse.Namespace, factory: Factory) -> int:
    """Print the token once the socket is listening, then serve in this process."""
    stream = open(args.log, "a", encoding="utf-8") if args.log else None  # noqa: SIM115
    try:
        log = configure_logging(stream, args.quiet)
        token = Token.fresh(os.getuid(), os.getpid())
        server = _build(args, factory, token, log)
        server.listen()
        _print_token(token)
        return run_server(server)
    finally:
        if stream is not None:
            stream.close()


def _detach_stdio(log_path: str | None) -> Any:
    """Point stdin at /dev/null and stdout/stderr at the log (or /dev/null)."""
    null = os.open(os.devnull, os.O_RDWR)
    out = null
    stream = None
    if log_path:
        out = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    os.dup2(null, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    if log_path:
        stream = open(1, "a", encoding="utf-8", closefd=False)  # noqa: SIM115
    os.close(null)
    if out != null:
        os.close(out)
    return stream


def _daemon(args: argparse.Namespace, factory: Factory, auth: str, status_fd: int) -> int:
    """The background process: detach, bind, report to the parent, serve."""
    try:
        stream = _detach_stdio(args.log)
        os.chdir("/")
        log = configure_logging(stream, args.quiet)
        token = Token(os.getuid(), os.getpid(), auth)
        server = _build(args, factory, token, log)
        server.listen()
    except (TokenServerError, OSError) as exc:
        message = str(exc) if isinstance(exc, TokenServerError) else f"{exc.strerror}"
        os.write(status_fd, b"E" + message.encode(errors="replace")[:1000])
        os.close(status_fd)
        return 2
    os.write(status_fd, b"K" + str(os.getpid()).encode())
    os.close(status_fd)
    return run_server(server)


def run_daemon(args: argparse.Namespace, factory: Factory) -> int:
    """Double fork; the grandchild (setsid, stdio detached) binds and serves; we print."""
    auth = Token.fresh(0, 1).auth
    rfd, wfd = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        status = 2
        try:
            os.close(rfd)
            os.setsid()
            status = _daemon(args, factory, auth, wfd) if os.fork() == 0 else 0
        finally:
            os._exit(status)
    os.close(wfd)
    os.waitpid(child, 0)
    status = b""
    deadline = time.monotonic() + START_TIMEOUT
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([rfd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                break
            chunk = os.read(rfd, 2048)
            if not chunk:
                break
            status += chunk
    finally:
        os.close(rfd)
    if status[:1] == b"K" and status[1:].isdigit():
        _print_token(Token(os.getuid(), int(status[1:]), auth))
        return 0
    reason = status[1:].decode(errors="replace") if status[:1] == b"E" else (
        "the background server did not start")
    print(f"token_server: error: {reason}", file=sys.stderr)
    return 2


# --------------------------------------------------------------------------- CLI


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value <= 86400:
        raise argparse.ArgumentTypeError(f"must be 0 < seconds <= 86400: {text!r}")
    return value


def _uid(text: str) -> int:
    if text.isdigit():
        return int(text)
    try:
        return pwd.getpwnam(text).pw_uid
    except KeyError:
        raise argparse.ArgumentTypeError(f"no such user: {text!r}") from None


def build_parser(prog: str = "token_server") -> argparse.ArgumentParser:
    """The command-line parser."""
    parser = _Parser(
        prog=prog,
        description="Print a one-time token, then wait in the background for one PAM "
        "request on /tmp/transient-token-<uid>-<pid> (pid: the background server's).",
        epilog="The token is printed only once the socket is listening. Exit status: 0 "
        "token printed (foreground: token accepted), 1 refused/expired, 2 error.")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--socket", metavar="PATH",
                       help="listen on PATH instead (the PAM side must be told PATH)")
    where.add_argument("--socket-dir", metavar="DIR", default=SOCKET_DIR,
                       help="directory of transient-token-<uid>-<pid> (default /tmp)")
    parser.add_argument("--timeout", type=_seconds, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                        help="how long the token stays valid without a connection "
                        "(default 60)")
    parser.add_argument("--idle-timeout", type=_seconds, default=DEFAULT_IDLE_TIMEOUT,
                        metavar="SECONDS",
                        help="how long one connection may take to send the token (default 5)")
    parser.add_argument("--allow-uid", type=_uid, action="append", metavar="UID",
                        help="peer uid (or user name) allowed to present the token; "
                        "repeatable; default 0 (root, the PAM side)")
    parser.add_argument("--foreground", action="store_true",
                        help="do not go to the background (tests, supervisors)")
    parser.add_argument("--log", metavar="FILE",
                        help="append log lines to FILE (default: stderr in the "
                        "foreground, nowhere in the background)")
    parser.add_argument("--quiet", action="store_true", help="log errors only")
    return parser


def main(argv: list[str] | None = None, *, factory: Factory = TokenServer,
         prog: str = "token_server") -> int:
    """Command-line entry point; returns the exit status."""
    args = build_parser(prog).parse_args(argv)
    # absolute, since the background server runs in /
    if args.socket is not None:
        args.socket = os.path.abspath(args.socket)
    args.socket_dir = os.path.abspath(args.socket_dir)
    try:
        if args.foreground:
            return run_foreground(args, factory)
        return run_daemon(args, factory)
    except TokenServerError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
