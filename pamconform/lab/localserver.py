"""Start a server script as a child process on a fresh socket, and always clean it up."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pamconform.core import interrupts, privatefiles, resources
from pamconform.core.errors import HarnessError

#: Builds the command line from (socket path, credentials file).
CommandFor = Callable[[Path, Path], list[str]]


def reference_server_script() -> Path:
    return resources.servers_dir() / "redirector_server.py"


def reference_command(extra: list[str] | None = None) -> CommandFor:
    """The bundled reference server, allowing the harness's own uid as a client."""

    def command(sock: Path, creds: Path) -> list[str]:
        return [
            sys.executable,
            str(reference_server_script()),
            "serve",
            str(sock),
            "--credentials",
            str(creds),
            "--allow-uid",
            str(os.getuid()),
            "--quiet",
            *(extra or []),
        ]

    return command


#: The scrypt cost (N) the logins of local servers are hashed at, when set: the reference
#: server's own default (16384) otherwise. Lower only for tests (the self-tests set 1024,
#: as a test settings file picks a fast password hasher). A faster server gets the same
#: verdicts but where a case is bounded by time: at 1024 the reference server's
#: long-failure-run reaches its 300 failures (PASS, not INFORMATIONAL "not reached").
SCRYPT_N_ENV = "PAMCONFORM_SCRYPT_N"

#: The credentials files written so far in this process, by a digest of their logins: the
#: same logins again (the gallery's servers, a test's many servers) get a copy, so each
#: login costs one scrypt hash and one ``adduser`` process per process, not per server.
_WRITTEN: dict[str, bytes] = {}


def _digest(pairs: list[tuple[str, str]], cost: list[str]) -> str:
    h = hashlib.sha256(" ".join(cost).encode())
    for user, password in pairs:
        h.update(f"{len(user)}:{user}{len(password)}:{password}".encode())
    return h.hexdigest()


def write_credentials(path: Path, pairs: list[tuple[str, str]], timeout: float = 30) -> None:
    """Create a credentials file (mode 0600) with the reference server's ``adduser``
    command (at the cost :data:`SCRYPT_N_ENV` names, if set), or copy the one written for
    the same logins before."""
    n = os.environ.get(SCRYPT_N_ENV, "")
    cost = ["--scrypt-n", n] if n else []
    key = _digest(pairs, cost)
    written = _WRITTEN.get(key)
    if written is not None:
        privatefiles.write_bytes(path, written)
        return
    for user, password in pairs:
        proc = subprocess.run(
            [sys.executable, str(reference_server_script()), "adduser", str(path), user,
             *cost],
            input=(password + "\n").encode(),
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        if proc.returncode != 0:
            raise HarnessError(f"adduser {user} failed: {proc.stderr.decode().strip()}")
    _WRITTEN[key] = path.read_bytes()


class LocalServer:
    """A server child process listening on ``<tmpdir>/socket`` until stopped."""

    def __init__(
        self,
        command: CommandFor,
        credentials: list[tuple[str, str]],
        *,
        name: str = "server",
        start_timeout: float = 15.0,
    ) -> None:
        self.command = command
        self.credentials = credentials
        self.name = name
        self.start_timeout = start_timeout
        self.dir = Path(tempfile.mkdtemp(prefix="pc-", dir="/tmp"))
        interrupts.remove_on_quit(self, directory=self.dir)
        # 0755, so that the socket's own mode decides who may connect (R-S6 is checked)
        os.chmod(self.dir, 0o755)
        self.socket = self.dir / "socket"
        self.log_path = self.dir / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> LocalServer:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        creds = self.dir / "credentials"
        write_credentials(creds, self.credentials)
        fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as log:  # private, as every file the tool writes
            self.proc = subprocess.Popen(
                self.command(self.socket, creds),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        interrupts.remove_on_quit(self, group=self.proc.pid)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise HarnessError(f"{self.name} exited at start: {self.log_tail()}")
            if self._accepting():
                return
            time.sleep(0.05)
        raise HarnessError(f"{self.name} did not listen within {self.start_timeout:.0f} s")

    def _accepting(self) -> bool:
        if not self.socket.exists():
            return False
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(1)
            try:
                s.connect(str(self.socket))
            except OSError:
                return False
        return True

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=5)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        shutil.rmtree(self.dir, ignore_errors=True)
        interrupts.removed(self)
