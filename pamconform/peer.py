"""Talk to a socket as another uid, in a forked child (needs a root harness)."""

from __future__ import annotations

import contextlib
import os
import select
import socket
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class PeerOutcome:
    """What an unprivileged client saw."""

    refused: str | None
    reply: bytes
    error: str | None

    def describe(self) -> str:
        if self.refused:
            return f"connect refused ({self.refused})"
        tail = f", then {self.error}" if self.error else ""
        return f"reply {self.reply!r}{tail}"


def _child(uid: int, gid: int, path: str, data: bytes, timeout: float, out: int) -> None:
    """Runs in the forked child: drop privileges, connect, send, read, report, exit."""
    status, body = b"E", b""
    try:
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(path)
        except OSError as exc:
            status, body = b"R", str(exc).encode()
        else:
            status = b"O"
            try:
                s.sendall(data)
                while len(body) < 4096:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    body += chunk
            except OSError:
                status = b"P"
    finally:
        os.write(out, status + body[:4096])
        os._exit(0)


def connect_as(uid: int, gid: int, path: Path | str, data: bytes, timeout: float) -> PeerOutcome:
    """Connect as uid/gid, send data, read the reply until close."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        os.close(rfd)
        _child(uid, gid, str(path), data, timeout, wfd)
    os.close(wfd)
    deadline = time.monotonic() + timeout + 5
    raw = b""
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([rfd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                break
            chunk = os.read(rfd, 8192)
            if not chunk:
                break
            raw += chunk
    finally:
        os.close(rfd)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)
        os.waitpid(pid, 0)
    if not raw:
        raise RuntimeError("the unprivileged child reported nothing")
    status, body = raw[:1], raw[1:]
    if status == b"R":
        return PeerOutcome(body.decode(errors="replace"), b"", None)
    if status == b"E":
        raise RuntimeError(f"could not switch to uid {uid}")
    return PeerOutcome(None, body, "connection error" if status == b"P" else None)
