"""Throw-away lab containers: start, run commands (never hangs), copy files in, clean up.

Every command run in a lab container goes through this module: :meth:`LabContainer.run`
(output collected, a :class:`CommandResult`), :meth:`LabContainer.exec_argv` (the
``docker exec`` argv for a pty or a long-lived stdin/stdout process, e.g. pexpect logins
and scenario servers) and :meth:`LabContainer.start_daemon` (detached). Each wraps the
command in coreutils ``timeout`` here, in one place, so no caller builds a ``docker exec``
line or quotes a shell word itself: a string command runs under ``sh -c`` with its values
passed as ``"$1"`` ... (``args=``), never spliced into the script.

Every container and network made here carries the label ``pamconform=1`` plus
``pamconform.run=<run id>``, so :func:`cleanup_stale` can always find them again,
including after a crash or Ctrl-C.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import io
import itertools
import logging
import os
import posixpath
import select
import signal
import socket
import tarfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import FrameType, TracebackType
from typing import Any

from pamconform.core import interrupts
from pamconform.lab.channel import SERVER_PATH, Channel, ChannelClosed, NotSent, server_source
from pamconform.lab.frames import STDERR, take_frames
from pamconform.lab.sdk import docker, requests

log = logging.getLogger(__name__)

LABEL = "pamconform"
RUN_LABEL = "pamconform.run"
OWNER_LABEL = "pamconform.owner"
KEEP_LABEL = "pamconform.keep"

#: Seconds between the in-container SIGTERM and SIGKILL (``timeout -k``).
KILL_GRACE_S = 2
#: Extra seconds the client waits beyond the in-container timeout before giving up.
CLIENT_SLACK_S = 3.0
#: Per-stream cap on captured output; the rest is read and dropped.
MAX_OUTPUT = 16 * 1024 * 1024
#: Exit codes of coreutils ``timeout``: timed out (TERM worked) / had to KILL.
TIMEOUT_EXIT = 124
KILLED_EXIT = 137
#: The environment variable that turns the command channel off (``0``): every command
#: then runs through its own ``docker exec``, every file through ``put_archive``.
CHANNEL_ENV = "PAMCONFORM_LAB_CHANNEL"
#: How long a file write or read through the channel may take.
FILE_TIMEOUT_S = 30.0
#: Age after which another host's containers count as stale even when sparing live runs.
FOREIGN_STALE_S = 6 * 3600

_names = itertools.count(1)


def _any_owner_errors() -> tuple[type[BaseException], ...]:
    """What a removal may raise whoever owns the object (looked up when the SDK is in use)."""
    return (docker.errors.DockerException, requests.exceptions.RequestException, OSError)


class ExecFailed(RuntimeError):
    """Raised by :meth:`CommandResult.check` for a non-zero exit or a timeout."""


@dataclass(frozen=True)
class CommandResult:
    """What one command inside a container did."""

    exit_code: int
    stdout: bytes
    stderr: bytes
    duration_s: float
    timed_out: bool = False
    cmd: tuple[str, ...] = field(default=(), repr=False)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out

    @property
    def out(self) -> str:
        return self.stdout.decode("utf-8", "replace")

    @property
    def err(self) -> str:
        return self.stderr.decode("utf-8", "replace")

    def check(self) -> CommandResult:
        """Return self if the command succeeded, else raise ExecFailed with its stderr."""
        if not self.ok:
            what = "timed out" if self.timed_out else f"exited {self.exit_code}"
            raise ExecFailed(f"{' '.join(self.cmd)!r} {what}: {self.err.strip()[-2000:]}")
        return self


def new_run_id() -> str:
    return uuid.uuid4().hex[:10]


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _labels(run_id: str, keep: bool, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    labels = {LABEL: "1", RUN_LABEL: run_id, OWNER_LABEL: _owner()}
    if keep:
        labels[KEEP_LABEL] = "1"
    labels.update(extra or {})
    return labels


def _timed_out(code: int, duration: float, timeout: float) -> bool:
    """Whether ``timeout -k`` ended the command: TERM worked (124), or KILL was needed
    (137, told from the command's own SIGKILL by the time it took)."""
    return code == TIMEOUT_EXIT or (code == KILLED_EXIT and duration >= timeout)


def _as_argv(cmd: Sequence[str] | str, args: Sequence[str] = ()) -> list[str]:
    """An argv as is, or a script for ``sh -c`` whose ``args`` become ``"$1"`` ..."""
    if isinstance(cmd, str):
        return ["sh", "-c", cmd, "sh", *map(str, args)]
    if args:
        raise ValueError("args= goes with a script (a string command)")
    argv = [str(a) for a in cmd]
    if not argv:
        raise ValueError("empty command")
    return argv


def _bounded(argv: list[str], timeout: float, *, foreground: bool = False) -> list[str]:
    """``argv`` under coreutils ``timeout`` (TERM, then KILL after KILL_GRACE_S)."""
    if timeout <= 0:
        raise ValueError("timeout must be positive")
    # --foreground keeps a pty's command in the terminal's process group (it reads prompts)
    fg = ["--foreground"] if foreground else []
    return ["timeout", *fg, "-k", str(KILL_GRACE_S), f"{timeout:g}", *argv]


def docker_exec_argv(
    container: str,
    cmd: Sequence[str] | str,
    *,
    timeout: float | None,
    user: str | None = None,
    tty: bool = False,
    args: Sequence[str] = (),
    docker: str = "docker",
) -> list[str]:
    """The ``docker exec -i`` argv running ``cmd`` in ``container`` (``-t`` for a pty).

    ``timeout`` bounds the command inside the container; None only for a long-lived
    process whose caller stops it (e.g. by closing its stdin).
    """
    argv = _as_argv(cmd, args)
    if timeout is not None:
        argv = _bounded(argv, timeout, foreground=tty)
    flags = ["-it"] if tty else ["-i"]
    return [docker, "exec", *flags, *(["-u", user] if user else []), container, *argv]


class _SshPipes:
    """An exec stream over an ``ssh://`` engine reached through the ``ssh`` command.

    The SDK's ``SSHSocket`` is a socket in name only: the stream is the ``ssh`` process's
    pipes, so ``shutdown`` (the end of stdin) must close its stdin and waiting must watch
    its stdout, else stdin never ends and a deadline is never kept.
    """

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._proc = sock.proc
        self._fd: int = self._proc.stdout.fileno()

    def take_buffered(self) -> bytes:
        """What the SDK's reader already holds (read with the reply's headers)."""
        reader = self._proc.stdout
        os.set_blocking(self._fd, False)
        head = reader.peek() or b""  # the buffer, or one read of what the pipe holds now
        return bytes(reader.read1(len(head))) if head else b""

    def fileno(self) -> int:
        return self._fd

    def setblocking(self, _flag: bool) -> None:
        """No-op: the pipe is read only after ``select`` (and set non-blocking)."""

    def settimeout(self, _value: float | None) -> None:
        """No-op: ``ssh`` reads its stdin at once (stdin here is small)."""

    def send(self, data: bytes | memoryview) -> int:
        written = os.write(self._proc.stdin.fileno(), data)
        return written

    def sendall(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[self.send(view):]

    def recv(self, size: int) -> bytes:
        return os.read(self._fd, size)

    def shutdown(self, _how: int) -> None:
        self._proc.stdin.close()

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._sock.close()
        if self._proc.poll() is None:
            self._proc.terminate()
            with contextlib.suppress(Exception):
                self._proc.wait(timeout=KILL_GRACE_S)
        for pipe in (self._proc.stdin, self._proc.stdout):
            with contextlib.suppress(OSError, ValueError):
                pipe.close()


_Stream = socket.socket | _SshPipes


def _raw_socket(sock: Any) -> tuple[_Stream, bytes]:
    """The stream under what ``APIClient.exec_start(socket=True)`` returns, and the bytes
    of it already read."""
    if hasattr(sock, "proc"):  # the ssh:// transport through the ssh command
        pipes = _SshPipes(sock)
        return pipes, pipes.take_buffered()
    raw = getattr(sock, "_sock", sock)
    if not isinstance(raw, socket.socket):  # pragma: no cover - TLS transports
        raise TypeError(f"unsupported exec transport {type(sock).__name__}")
    return raw, b""


class LabContainer:
    """One running lab container. Use as a context manager or call :meth:`remove`."""

    def __init__(
        self, client: docker.DockerClient, container: Any, run_id: str, *, keep: bool = False
    ) -> None:
        self.client = client
        self.container = container
        self.run_id = run_id
        self.keep = keep
        self.removed = False
        self._channel: Channel | None = None
        #: why this container's commands go through ``docker exec`` (None: not known yet)
        self.channel_off: str | None = (
            f"{CHANNEL_ENV}=0" if os.environ.get(CHANNEL_ENV, "1") == "0" else None)
        self._channel_lock = threading.Lock()
        self._channel_opening = False

    # -- life cycle -----------------------------------------------------------------------
    @classmethod
    def start(
        cls,
        client: docker.DockerClient,
        image: str,
        *,
        name_prefix: str = "pamconform-",
        network: str = "none",
        keep: bool = False,
        run_id: str | None = None,
        labels: Mapping[str, str] | None = None,
        hostname: str = "pamlab",
        start_timeout: float = 30,
        **run_kwargs: Any,
    ) -> LabContainer:
        """Start ``image`` with ``sleep infinity`` under an init (reaps daemons' zombies).

        ``network="none"`` leaves only ``lo``; any other value names a Docker network.
        Extra keyword arguments go to ``client.containers.run``.
        """
        run_id = run_id or new_run_id()
        name = f"{name_prefix}{run_id}-{next(_names)}"
        net: dict[str, Any] = (
            {"network_mode": "none"} if network == "none" else {"network": network}
        )
        container = client.containers.run(
            image,
            ["sleep", "infinity"],
            name=name,
            hostname=hostname,
            detach=True,
            init=True,
            labels=_labels(run_id, keep, labels),
            **net,
            **run_kwargs,
        )
        box = cls(client, container, run_id, keep=keep)
        deadline = time.monotonic() + start_timeout
        try:
            while True:
                container.reload()
                if container.status == "running":
                    break
                if container.status in ("exited", "dead") or time.monotonic() > deadline:
                    logs = container.logs(tail=20).decode("utf-8", "replace")
                    raise RuntimeError(f"container {name} is {container.status}: {logs}")
                time.sleep(0.05)
        except BaseException:
            box.remove()
            raise
        return box

    @property
    def id(self) -> str:
        return str(self.container.id)

    @property
    def name(self) -> str:
        return str(self.container.name)

    def remove(self) -> None:
        """Force-remove the container (idempotent)."""
        if self.removed:
            return
        with self._channel_lock:
            if self._channel is not None:
                self._channel.close()
            self.channel_off = self.channel_off or "the container was removed"
        with contextlib.suppress(docker.errors.NotFound):
            try:
                self.container.remove(force=True, v=True)
            except docker.errors.APIError as exc:
                if "already in progress" not in str(exc):
                    raise
        self.removed = True

    def __enter__(self) -> LabContainer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self.keep:
            self.remove()

    def __repr__(self) -> str:
        return f"LabContainer({self.name}, {self.container.short_id})"

    # -- commands -------------------------------------------------------------------------
    def run(
        self,
        cmd: Sequence[str] | str,
        *,
        timeout: float,
        user: str | None = None,
        stdin: bytes | None = None,
        args: Sequence[str] = (),
        environment: Mapping[str, str] | None = None,
        workdir: str | None = None,
        max_output: int = MAX_OUTPUT,
    ) -> CommandResult:
        """Run ``cmd`` and collect its output: the one way to run a command in the lab.

        ``cmd`` is an argv, or a script for ``sh -c`` whose ``args`` it reads as
        ``"$1"`` ... (so no value is ever quoted into it). ``user`` defaults to root.
        Never hangs: the command runs under ``timeout -k 2 <timeout>`` inside the
        container, and the client stops waiting ``timeout + 2 + 3`` s after the start.
        A timed-out command gives ``timed_out=True`` (exit 124/137, or -1 when the client
        gave up first, e.g. because a background child kept stdout open).
        """
        argv = _as_argv(cmd, args)
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        channel = self.channel() if user in (None, "root") else None
        if channel is not None:
            with contextlib.suppress(NotSent):  # not run: the exec path below runs it
                return self._run_in_channel(channel, argv, timeout=timeout, stdin=stdin,
                                            environment=environment, workdir=workdir,
                                            max_output=max_output)
        wrapped = _bounded(argv, timeout)
        api = self.client.api
        start = time.monotonic()
        deadline = start + timeout + KILL_GRACE_S + CLIENT_SLACK_S
        exec_id = api.exec_create(
            self.id,
            wrapped,
            stdout=True,
            stderr=True,
            stdin=stdin is not None,
            tty=False,
            user=user or "root",
            environment=dict(environment) if environment else None,
            workdir=workdir,
        )["Id"]
        resp = api.exec_start(exec_id, detach=False, tty=False, socket=True)
        raw, head = _raw_socket(resp)
        out, err = bytearray(), bytearray()
        client_gave_up = False
        try:
            if stdin is not None:
                _send_all(raw, stdin, deadline)
                with contextlib.suppress(OSError):
                    raw.shutdown(socket.SHUT_WR)
            client_gave_up = not _read_frames(raw, out, err, deadline, max_output, head)
        finally:
            with contextlib.suppress(OSError):
                raw.close()
            with contextlib.suppress(Exception):
                resp.close()
        duration = time.monotonic() - start
        code = -1 if client_gave_up else self._exit_code(exec_id)
        timed_out = client_gave_up or _timed_out(code, duration, timeout)
        return CommandResult(code, bytes(out), bytes(err), duration, timed_out, tuple(argv))

    def channel(self) -> Channel | None:
        """This container's command channel (:mod:`pamconform.lab.channel`), opened on
        first use; None when it cannot be had (:attr:`channel_off` says why) or while
        another thread opens it (those commands go by exec)."""
        with self._channel_lock:
            if self._channel is not None and self._channel.dead is not None:
                self.channel_off = f"the channel closed: {self._channel.dead}"
                self._channel.close()
                self._channel = None
            if self._channel is not None or self.channel_off is not None or \
                    self._channel_opening:
                return self._channel
            self._channel_opening = True
        opened: Channel | None = None
        why: str | None = None
        failures: tuple[type[BaseException], ...] = (
            ChannelClosed, OSError, RuntimeError, *_any_owner_errors())
        try:
            self._put_archive(SERVER_PATH, server_source(), 0o644)
            opened = Channel.open(self.client.api, self.id)
        except failures as exc:  # the exec path works without it
            why = f"no channel: {exc}"
            log.debug("%s: %s", self.name, why)
        finally:
            with self._channel_lock:
                self._channel_opening = False
                if self.channel_off is not None or why is not None:  # removed meanwhile
                    self.channel_off = self.channel_off or why
                    if opened is not None:
                        opened.close()
                else:
                    self._channel = opened
                channel = self._channel
        return channel

    def _run_in_channel(self, channel: Channel, argv: list[str], *, timeout: float,
                        stdin: bytes | None, environment: Mapping[str, str] | None,
                        workdir: str | None, max_output: int) -> CommandResult:
        """:meth:`run` through the channel; NotSent when it did not get there."""
        start = time.monotonic()
        req = {"argv": argv, "timeout": timeout, "env": dict(environment or {}),
               "stdin": None if stdin is None else base64.b64encode(stdin).decode(),
               "cwd": workdir, "max_output": max_output}
        try:
            reply = channel.request(req, timeout + KILL_GRACE_S + CLIENT_SLACK_S)
        except NotSent:
            raise
        except ChannelClosed as exc:  # it may have run: not run again
            return CommandResult(-1, b"", f"pamconform: {exc}".encode(),
                                 time.monotonic() - start, False, tuple(argv))
        duration = time.monotonic() - start
        if reply is None:  # as an exec whose client gave up
            return CommandResult(-1, b"", b"", duration, True, tuple(argv))
        if "error" in reply:
            return CommandResult(-1, b"", f"pamconform channel: {reply['error']}".encode(),
                                 duration, False, tuple(argv))
        code = int(reply["rc"])
        return CommandResult(code, base64.b64decode(reply["stdout"]),
                             base64.b64decode(reply["stderr"]), duration,
                             _timed_out(code, duration, timeout), tuple(argv))

    def exec_argv(
        self,
        cmd: Sequence[str] | str,
        *,
        timeout: float | None,
        user: str | None = None,
        tty: bool = False,
        args: Sequence[str] = (),
    ) -> list[str]:
        """The host argv running ``cmd`` here with a pty (``tty``) or a live stdin/stdout.

        For pexpect and long-lived children (see :func:`docker_exec_argv`); everything
        else goes through :meth:`run`.
        """
        return docker_exec_argv(self.id, cmd, timeout=timeout, user=user, tty=tty, args=args)

    def _exit_code(self, exec_id: str, wait_s: float = 3.0) -> int:
        deadline = time.monotonic() + wait_s
        while True:
            info = self.client.api.exec_inspect(exec_id)
            if not info.get("Running") and info.get("ExitCode") is not None:
                return int(info["ExitCode"])
            if time.monotonic() > deadline:
                return -1
            time.sleep(0.01)

    def start_daemon(
        self,
        cmd: Sequence[str] | str,
        *,
        user: str = "root",
        environment: Mapping[str, str] | None = None,
        workdir: str | None = None,
        log_path: str | None = "/var/log/pamconform-daemon.log",
    ) -> str:
        """Start ``cmd`` detached; returns the exec id. It lives as long as the container.

        Output is appended to ``log_path`` inside the container (None: discarded).
        The daemon dies with the container. Check it with :meth:`daemon_running`.
        """
        argv = _as_argv(cmd)
        target = log_path or "/dev/null"
        wrapped = ["sh", "-c", 'exec "$@" >>"$0" 2>&1 </dev/null', target, *argv]
        api = self.client.api
        exec_id = str(
            api.exec_create(
                self.id,
                wrapped,
                stdout=False,
                stderr=False,
                user=user,
                environment=dict(environment) if environment else None,
                workdir=workdir,
            )["Id"]
        )
        api.exec_start(exec_id, detach=True)
        return exec_id

    def daemon_running(self, exec_id: str) -> bool:
        return bool(self.client.api.exec_inspect(exec_id).get("Running"))

    def wait_for(
        self, check: Sequence[str] | str, *, timeout: float = 10, interval: float = 0.1
    ) -> bool:
        """Poll ``check`` (a command, e.g. ``test -S /run/x``) until it exits 0."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if self.run(check, timeout=max(1.0, min(5.0, left))).ok:
                return True
            if time.monotonic() + interval > deadline:
                return False
            time.sleep(interval)

    # -- files ----------------------------------------------------------------------------
    def put_file(
        self, path: str, data: bytes, mode: int = 0o644, owner: str | int = "root"
    ) -> None:
        """Write ``data`` to absolute ``path`` (parents created) with ``mode`` and ``owner``.

        ``owner`` is a user name, ``user:group`` or a numeric uid.
        """
        if not path.startswith("/"):
            raise ValueError("path must be absolute")
        channel = self.channel()
        if channel is None or not self._write_in_channel(channel, path, data, mode):
            self._put_archive(path, data, mode)
        if str(owner) not in ("root", "root:root", "0", "0:0"):
            self.run(["chown", str(owner), path], timeout=10).check()
        # the mode is applied as given, but be explicit for setuid/sticky bits
        if mode & 0o7000:
            self.run(["chmod", f"{mode:o}", path], timeout=10).check()

    def _write_in_channel(self, channel: Channel, path: str, data: bytes, mode: int) -> bool:
        """Write through the channel; False when it did not get there (not sent)."""
        try:
            reply = channel.request({"write": path, "data": base64.b64encode(data).decode(),
                                     "mode": mode}, FILE_TIMEOUT_S)
        except NotSent:
            return False
        except ChannelClosed as exc:
            raise RuntimeError(f"writing {path} in {self.name}: {exc}") from None
        if reply is None or "error" in reply:
            why = reply["error"] if reply else f"no reply in {FILE_TIMEOUT_S:g} s"
            raise RuntimeError(f"writing {path} in {self.name}: {why}")
        return True

    def _put_archive(self, path: str, data: bytes, mode: int) -> None:
        """Write one file through the engine's archive upload (parents created)."""
        parent, base = posixpath.split(posixpath.normpath(path))
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo(base)
            info.size = len(data)
            info.mode = mode
            info.mtime = int(time.time())
            info.uid = info.gid = 0
            tar.addfile(info, io.BytesIO(data))
        payload = buf.getvalue()
        try:
            ok = self.container.put_archive(parent, payload)
        except docker.errors.NotFound:
            self.run(["mkdir", "-p", parent], timeout=10).check()
            ok = self.container.put_archive(parent, payload)
        if not ok:
            raise RuntimeError(f"put_archive to {parent} failed")

    def get_file(self, path: str) -> bytes:
        """Read one regular file from the container."""
        channel = self.channel()
        if channel is not None:
            with contextlib.suppress(NotSent):
                try:
                    reply = channel.request({"read": path}, FILE_TIMEOUT_S)
                except ChannelClosed as exc:
                    raise RuntimeError(f"reading {path} in {self.name}: {exc}") from None
                if reply is not None and "data" in reply:
                    return base64.b64decode(reply["data"])
                why = reply.get("error") if reply else f"no reply in {FILE_TIMEOUT_S:g} s"
                if reply is not None and str(why).startswith("FileNotFoundError"):
                    raise FileNotFoundError(path)
                raise RuntimeError(f"reading {path} in {self.name}: {why}")
        try:
            stream, _stat = self.container.get_archive(path)
        except docker.errors.NotFound:
            raise FileNotFoundError(path) from None
        buf = io.BytesIO(b"".join(stream))
        with tarfile.open(fileobj=buf) as tar:
            member = tar.next()
            fobj = tar.extractfile(member) if member else None
            if fobj is None:
                raise FileNotFoundError(path)
            return fobj.read()


def _send_all(raw: _Stream, data: bytes, deadline: float) -> None:
    view = memoryview(data)
    while view:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out writing stdin")
        raw.settimeout(left)
        try:
            sent = raw.send(view[: 1 << 16])
        except BrokenPipeError:
            return  # the command stopped reading; its output still tells what happened
        view = view[sent:]


def _read_frames(
    raw: _Stream, out: bytearray, err: bytearray, deadline: float, cap: int, head: bytes = b""
) -> bool:
    """Demultiplex Docker's stdout/stderr frames (``head``: those already read) until EOF;
    False if the deadline hit."""
    buf = bytearray(head)
    raw.setblocking(False)
    while True:
        for kind, payload in take_frames(buf):
            target = err if kind == STDERR else out
            room = cap - len(target)
            if room > 0:
                target += payload[:room]
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        ready, _, _ = select.select([raw], [], [], left)
        if not ready:
            return False
        try:
            chunk = raw.recv(1 << 16)
        except (BlockingIOError, InterruptedError):
            continue
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            return True
        buf += chunk


# -- cleanup ------------------------------------------------------------------------------
def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _age_s(created: str | None) -> float:
    if not created:
        return float("inf")
    try:
        stamp = datetime.fromisoformat(created[:26].rstrip("Z") + "+00:00")
    except ValueError:
        return float("inf")
    return (datetime.now(UTC) - stamp).total_seconds()


def _owner_live(labels: Mapping[str, str], created: str | None) -> bool:
    """True when the run that made this object may still be going."""
    host, _, pid = labels.get(OWNER_LABEL, "").rpartition(":")
    if not host or not pid.isdigit():
        return False
    if host != socket.gethostname():
        return _age_s(created) < FOREIGN_STALE_S
    return _pid_alive(int(pid))  # our own pid included: another session of this run


def cleanup_stale(
    client: docker.DockerClient,
    run_id: str | None = None,
    *,
    spare_live_runs: bool = False,
) -> int:
    """Remove containers and networks labelled ``pamconform=1``; return how many.

    ``run_id`` limits this to one run. ``spare_live_runs`` keeps objects whose owning
    process is still alive on this host (a concurrent run), which is what a new run
    wants at its start. Errors on single objects are logged, not raised.
    """
    filters = {"label": [f"{LABEL}=1"] + ([f"{RUN_LABEL}={run_id}"] if run_id else [])}
    removed = 0
    try:
        containers = client.containers.list(all=True, filters=filters, ignore_removed=True)
    except docker.errors.NotFound:
        containers = []
    for c in containers:
        labels = c.labels or {}
        if spare_live_runs and _owner_live(labels, c.attrs.get("Created")):
            continue
        try:
            c.remove(force=True, v=True)
            removed += 1
        except docker.errors.NotFound:
            pass
        except _any_owner_errors() as exc:
            log.warning("could not remove container %s: %s", c.name, exc)
    for n in client.networks.list(filters=filters):
        labels = n.attrs.get("Labels") or {}
        if spare_live_runs and _owner_live(labels, n.attrs.get("Created")):
            continue
        try:
            n.remove()
            removed += 1
        except docker.errors.NotFound:
            pass
        except _any_owner_errors() as exc:
            log.warning("could not remove network %s: %s", n.name, exc)
    return removed


_Handler = Callable[[int, FrameType | None], Any] | int | None


class LabSession:
    """Owns the containers and networks of one run and always cleans them up.

    On enter: removes stale pamconform objects of dead runs (``clean_start``) and, in the
    main thread, installs SIGINT/SIGTERM handlers (unless :func:`pamconform.core.interrupts.guard`
    handles them: then the signal unwinds into ``__exit__``). On exit, on those signals and at
    interpreter exit: removes everything labelled with this run id, unless ``keep``.
    """

    def __init__(
        self,
        client: docker.DockerClient,
        *,
        run_id: str | None = None,
        keep: bool = False,
        clean_start: bool = True,
        handle_signals: bool = True,
        name_prefix: str = "pamconform-",
    ) -> None:
        self.client = client
        self.run_id = run_id or new_run_id()
        self.keep = keep
        self.clean_start = clean_start
        self.handle_signals = handle_signals
        self.name_prefix = name_prefix
        self.containers: list[LabContainer] = []
        self.networks: list[Any] = []
        self._previous: dict[int, _Handler] = {}
        self._closed = False
        self._lock = threading.Lock()

    def __enter__(self) -> LabSession:
        if self.clean_start:
            n = cleanup_stale(self.client, spare_live_runs=True)
            if n:
                log.info("removed %d stale pamconform object(s)", n)
        # Under the command's interrupt guard, the signal unwinds the run and __exit__
        # cleans up; handling it here too would let a second Ctrl-C cut that clean-up.
        if (self.handle_signals and not interrupts.guarded()
                and threading.current_thread() is threading.main_thread()):
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._on_signal)
        atexit.register(self.close)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def container(self, image: str, *, network: str = "none", **kwargs: Any) -> LabContainer:
        """Start a lab container belonging to this run (see :meth:`LabContainer.start`)."""
        if self._closed:
            raise RuntimeError("session closed")
        kwargs.setdefault("name_prefix", self.name_prefix)
        box = LabContainer.start(
            self.client, image, network=network, keep=self.keep, run_id=self.run_id, **kwargs
        )
        self.containers.append(box)
        return box

    def network(self, name: str | None = None, *, internal: bool = True) -> Any:
        """Create a labelled bridge network (internal: no route out) for this run."""
        net = self.client.networks.create(
            name or f"{self.name_prefix}{self.run_id}-net{next(_names)}",
            driver="bridge",
            internal=internal,
            labels=_labels(self.run_id, self.keep),
        )
        self.networks.append(net)
        return net

    def close(self) -> None:
        """Remove this run's objects (unless keep) and restore signal handlers."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            if self.keep:
                names = ", ".join(c.name for c in self.containers) or "none"
                log.warning("keeping lab containers of run %s: %s", self.run_id, names)
            else:
                for box in self.containers:
                    with contextlib.suppress(*_any_owner_errors()):
                        box.remove()
                cleanup_stale(self.client, self.run_id)
        finally:
            self._restore_signals()
            atexit.unregister(self.close)

    def _restore_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig, prev in self._previous.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(sig, prev if prev is not None else signal.SIG_DFL)
        self._previous.clear()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        prev = self._previous.get(signum, signal.SIG_DFL)
        self.close()  # also restores the previous handlers
        if callable(prev):
            prev(signum, frame)  # e.g. default_int_handler -> KeyboardInterrupt
        elif prev == signal.SIG_DFL:
            os.kill(os.getpid(), signum)  # die the way the signal would have killed us


def labelled(client: docker.DockerClient, run_id: str | None = None) -> Iterable[Any]:
    """The pamconform containers currently known to the engine (for reports and tests)."""
    filters = {"label": [f"{LABEL}=1"] + ([f"{RUN_LABEL}={run_id}"] if run_id else [])}
    return client.containers.list(all=True, filters=filters, ignore_removed=True)
