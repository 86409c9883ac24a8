"""The command channel: one long-lived exec per lab container that runs its commands.

Every ``docker exec`` costs about 60 ms of CPU (the engine, runc, the shim, the process
runc sets up) and every ``put_archive`` as much (the engine runs itself again to unpack);
a run made about 800 of them, a quarter of its CPU. :class:`Channel` starts
``channel_server.py`` in the container once, through one exec with its stdin open, and
sends it requests as JSON lines: commands (bounded as ``timeout -k`` bounds an exec's),
file writes and reads. Replies come back by request id, so any thread may use it.

The channel is an optimisation with the exec path's meaning: :class:`~.containers.
LabContainer` falls back to ``docker exec`` whenever it cannot open one, and for what it
does not carry (another user, a pty, a live stdin, a daemon). A channel that closes
under a request (the container went away) answers that request with an error; it is not
run again, since it may have run.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import select
import threading
from dataclasses import dataclass, field
from importlib import resources as importlib_resources
from typing import Any

from pamconform.lab.frames import STDERR, take_frames

#: Where the server's script is put in the container.
SERVER_PATH = "/run/pamconform-channel.py"
#: How long opening the channel waits for the server's first reply.
OPEN_TIMEOUT_S = 15.0
#: How long a request's line may take to send.
SEND_TIMEOUT_S = 10.0
#: How much of the server's stderr is kept for the message when it dies.
STDERR_KEPT = 4096


class ChannelClosed(RuntimeError):
    """The channel closed with the request sent: it may have run."""


class NotSent(ChannelClosed):
    """The request was not sent: the channel was closed already, or sending failed."""


def server_source() -> bytes:
    """The server's script, as shipped with the package."""
    return importlib_resources.files("pamconform.lab").joinpath(
        "channel_server.py").read_bytes()


@dataclass
class _Waiter:
    event: threading.Event = field(default_factory=threading.Event)
    reply: dict[str, Any] | None = None
    error: str | None = None


class Channel:
    """The host's end of one container's channel (see the module docstring)."""

    def __init__(self, api: Any, container_id: str) -> None:
        from pamconform.lab.containers import _raw_socket

        # the locale left as the image has it: the commands inherit the server's environment
        exec_id = api.exec_create(container_id, ["python3", SERVER_PATH], stdin=True,
                                  stdout=True, stderr=True, tty=False, user="root",
                                  environment={"PYTHONCOERCECLOCALE": "0"})["Id"]
        self._resp = api.exec_start(exec_id, detach=False, tty=False, socket=True)
        self._raw, head = _raw_socket(self._resp)
        self._raw.settimeout(SEND_TIMEOUT_S)
        self._ids = itertools.count(1)
        self._pending: dict[int, _Waiter] = {}
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._dead: str | None = None
        self._stderr = bytearray()
        self._reader = threading.Thread(target=self._read, args=(head,), daemon=True,
                                        name=f"channel-{container_id[:12]}")
        self._reader.start()

    @classmethod
    def open(cls, api: Any, container_id: str) -> Channel:
        """A working channel: it has answered a first request, or ChannelClosed says why."""
        channel = cls(api, container_id)
        try:
            reply = channel.request({"argv": ["true"], "timeout": OPEN_TIMEOUT_S},
                                    OPEN_TIMEOUT_S)
            if reply is None or reply.get("rc") != 0:
                raise ChannelClosed(f"the channel's server did not answer: "
                                    f"{reply or 'no reply'} {channel.stderr_tail()}".rstrip())
        except BaseException:
            channel.close()
            raise
        return channel

    @property
    def dead(self) -> str | None:
        """Why the channel closed, or None while it is open."""
        return self._dead

    def stderr_tail(self) -> str:
        return bytes(self._stderr[-STDERR_KEPT:]).decode("utf-8", "replace").strip()

    def request(self, req: dict[str, Any], wait_s: float) -> dict[str, Any] | None:
        """Send ``req`` and wait at most ``wait_s`` for its reply (None: not in time).
        ChannelClosed: it could not be sent, or the channel closed before the reply."""
        waiter = _Waiter()
        with self._lock:
            if self._dead is not None:
                raise NotSent(self._dead)
            ident = next(self._ids)
            self._pending[ident] = waiter
        line = json.dumps({**req, "id": ident}, separators=(",", ":")).encode() + b"\n"
        with self._send_lock:
            try:
                if self._dead is not None:  # closed while this one waited its turn
                    raise OSError(self._dead)
                self._raw.sendall(line)
            except OSError as exc:
                self._close_with(f"cannot send to the channel: {exc}")
                self.close()  # the server ends with its stdin
                raise NotSent(self._dead or str(exc)) from None
        if not waiter.event.wait(wait_s):
            with self._lock:
                self._pending.pop(ident, None)
            return None
        if waiter.error is not None:
            raise ChannelClosed(waiter.error)
        return waiter.reply

    def close(self) -> None:
        """End the server (its stdin closes) and this end; idempotent."""
        with contextlib.suppress(OSError):
            self._raw.shutdown(2)
        self._close_with("the channel was closed")
        with contextlib.suppress(OSError):
            self._raw.close()
        with contextlib.suppress(Exception):
            self._resp.close()

    def _close_with(self, why: str) -> None:
        with self._lock:
            if self._dead is None:
                self._dead = why
            waiting, self._pending = self._pending, {}
        for waiter in waiting.values():
            waiter.error = self._dead
            waiter.event.set()

    def _read(self, head: bytes) -> None:
        """Demultiplex the exec's frames: stdout lines are replies, stderr is kept. Ends
        the channel however it ends, so no request waits for a reader that is gone."""
        why = "the channel's server ended"
        try:
            self._read_frames(bytearray(head))
        except Exception as exc:  # anything: the waiting requests must hear of it
            why = f"the channel broke: {type(exc).__name__}: {exc}"
        finally:
            self._close_with(f"{why} {self.stderr_tail()}".rstrip())

    def _read_frames(self, buf: bytearray) -> None:
        lines = bytearray()
        while self._dead is None:
            for kind, payload in take_frames(buf):
                if kind == STDERR:
                    self._stderr += payload
                    del self._stderr[:-STDERR_KEPT]
                    continue
                scanned = len(lines)  # a long reply comes in many frames: no rescans
                lines += payload
                while (end := lines.find(b"\n", scanned)) >= 0:
                    self._deliver(bytes(lines[:end]))
                    del lines[:end + 1]
                    scanned = 0
            ready, _, _ = select.select([self._raw], [], [], 1.0)
            if not ready:
                continue
            try:
                chunk = self._raw.recv(1 << 16)
            except (BlockingIOError, InterruptedError, TimeoutError):
                continue
            if not chunk:
                return
            buf += chunk

    def _deliver(self, line: bytes) -> None:
        try:
            reply = json.loads(line)
            ident = int(reply["id"])
        except (ValueError, KeyError, TypeError):
            # not quoted: a reply carries a command's output, which may hold a secret
            self._stderr += f"an unreadable reply of {len(line)} bytes\n".encode()
            return
        with self._lock:
            waiter = self._pending.pop(ident, None)
        if waiter is not None:
            waiter.reply = reply
            waiter.event.set()
