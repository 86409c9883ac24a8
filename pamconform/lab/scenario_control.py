"""Harness side of the scenario server's control channel (``servers/scenario_server.py``).

Two transports, one API: :class:`ScenarioControl` talks to a control socket (one
connection per request); :class:`ScenarioProcess` starts the server with
``--control -`` from a host argv (in the lab: :meth:`~pamconform.lab.LabContainer.exec_argv`)
and talks over its stdin/stdout.  Every exchange has a timeout; :meth:`ScenarioProcess.stop`
closes its stdin and kills it if it lingers.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from pamconform.core import resources
from pamconform.core.errors import HarnessError

DEFAULT_TIMEOUT_S = 5.0
#: A ``log`` may wait on the server side; this is added to the transport timeout.
_LOG_WAIT_MAX_S = 10.0


class ScenarioControlError(HarnessError):
    """The control channel failed, or the server refused a request."""


def scenario_server_script() -> Path:
    """Where the bundled scenario server lives."""
    return resources.servers_dir() / "scenario_server.py"


class _Client:
    """The control operations, over whatever ``_exchange`` does."""

    timeout: float

    def _exchange(self, line: bytes, timeout: float) -> bytes:
        raise NotImplementedError

    def request(self, obj: dict[str, Any], *, timeout: float | None = None) -> dict[str, Any]:
        """Send one control object and return the reply; raise if it is not ``ok``."""
        wait = self.timeout if timeout is None else timeout
        raw = self._exchange(json.dumps(obj).encode() + b"\n", wait)
        try:
            reply = json.loads(raw)
        except ValueError:
            raise ScenarioControlError(f"bad control reply: {raw[:200]!r}") from None
        if not isinstance(reply, dict) or not reply.get("ok"):
            error = reply.get("error") if isinstance(reply, dict) else reply
            raise ScenarioControlError(f"scenario server refused {obj.get('op')}: {error}")
        return reply

    def set(self, name: str, **args: Any) -> dict[str, Any]:
        """Play scenario ``name`` (with ``args``) for the next connections."""
        return self.request({"op": "set", "scenario": name, "args": args})

    def log(self, wait: float = 0.0) -> list[dict[str, Any]]:
        """Take the record of connections since the last ``log``.

        ``wait``: first wait up to this many seconds (at most 10) for open
        connections to finish on the server side.
        """
        wait = min(max(wait, 0.0), _LOG_WAIT_MAX_S)
        reply = self.request({"op": "log", "wait": wait}, timeout=self.timeout + wait)
        log = reply.get("log")
        if not isinstance(log, list):
            raise ScenarioControlError(f"bad log reply: {reply!r}")
        return log

    def ping(self) -> dict[str, Any]:
        """The current scenario, its args, the open connection count and the pid."""
        return self.request({"op": "ping"})

    def shutdown(self) -> None:
        """Ask the server to stop (it unlinks its sockets)."""
        self.request({"op": "stop"})


class ScenarioControl(_Client):
    """A scenario server's control socket.

    >>> ctl = ScenarioControl("/tmp/pc-x/ctl")   # doctest: +SKIP
    >>> ctl.set("malformed", reply="3020")        # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike[str], timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self.path = os.fspath(path)
        self.timeout = timeout

    def _exchange(self, line: bytes, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(timeout)
                sock.connect(self.path)
                sock.sendall(line)
                data = b""
                while not data.endswith(b"\n"):
                    sock.settimeout(max(0.001, deadline - time.monotonic()))
                    chunk = sock.recv(65536)
                    if not chunk:
                        raise ScenarioControlError("control socket closed without a reply")
                    data += chunk
                return data
        except (TimeoutError, OSError) as exc:
            raise ScenarioControlError(f"control socket {self.path}: {exc}") from None


class ScenarioProcess(_Client):
    """A scenario server child run with ``--control -``; controlled over its stdin/stdout.

    ``argv`` is the whole command, e.g. ``box.exec_argv(["python3",
    "/srv/scenario_server.py", "/run/s.sock", "--control", "-"], timeout=None)``; see
    :meth:`local` for a host process.  Closing stdin stops the server.
    """

    def __init__(self, argv: list[str], timeout: float = DEFAULT_TIMEOUT_S,
                 start_timeout: float = 15.0) -> None:
        self.argv = argv
        self.timeout = timeout
        self._buf = b""
        self._stopped = False
        # stderr goes to a file: a chatty server must never block on a full pipe.
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed in stop())
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
            start_new_session=True,
        )
        assert self.proc.stdout is not None
        self._sel = selectors.DefaultSelector()
        self._sel.register(self.proc.stdout, selectors.EVENT_READ)
        try:
            ready = json.loads(self._read_line(start_timeout))
            if not (isinstance(ready, dict) and ready.get("ready")):
                raise ScenarioControlError(f"unexpected first line: {ready!r}")
        except (ScenarioControlError, ValueError) as exc:
            err = self.stop()
            raise ScenarioControlError(f"scenario server did not start: {exc}; {err}") from None
        self.auth_path: str = ready["auth"]

    @classmethod
    def local(cls, auth_socket: str | os.PathLike[str], *, scenario: str = "grant",
              mode: int = 0o600, python: str = "python3",
              timeout: float = DEFAULT_TIMEOUT_S) -> ScenarioProcess:
        """The bundled server as a host child process."""
        argv = [python, str(scenario_server_script()), os.fspath(auth_socket),
                "--control", "-", "--mode", f"{mode:04o}", "--scenario", scenario]
        return cls(argv, timeout=timeout)

    def __enter__(self) -> ScenarioProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _read_line(self, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not self._sel.select(left):
                raise ScenarioControlError(f"no reply within {timeout:.1f} s")
            chunk = os.read(fd, 65536)
            if not chunk:
                raise ScenarioControlError("scenario server exited")
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line

    def _exchange(self, line: bytes, timeout: float) -> bytes:
        assert self.proc.stdin is not None
        if self._stopped:
            raise ScenarioControlError("scenario server stopped")
        try:
            self.proc.stdin.write(line)
            self.proc.stdin.flush()
        except OSError as exc:
            raise ScenarioControlError(f"scenario server stdin: {exc}") from None
        try:
            return self._read_line(timeout)
        except ScenarioControlError:
            # A reply still on its way would be read as the next request's (a stale "ok"
            # for a scenario, a log with no records): this server is of no more use, and
            # whoever needs one starts a new one (the lanes and the driver do).
            self.stop()
            raise

    def stop(self, timeout: float = 5.0) -> str:
        """Close stdin (the server stops and unlinks its sockets); kill if it lingers.

        Returns the tail of the server's stderr.
        """
        if self._stopped:
            return ""
        self._stopped = True
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout)
        err = b""
        with contextlib.suppress(OSError):
            self._stderr.seek(0)
            err = self._stderr.read()[-2000:]
        self._stderr.close()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._sel.close()
        return err.decode(errors="replace")
