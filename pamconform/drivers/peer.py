"""Talk to a socket as another uid, in a forked child (needs a root harness).

With ``keep_dac_override`` the child keeps CAP_DAC_OVERRIDE (only) after dropping to
the uid: it then gets through any socket file mode, so only the server's own peer check
(``SO_PEERCRED``) can stop it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import socket
import time
from dataclasses import dataclass
from pathlib import Path

_PR_SET_KEEPCAPS = 8
_CAPABILITY_VERSION_3 = 0x20080522
CAP_DAC_OVERRIDE = 1

# Resolved here, in the parent: the forked child of a threaded harness must not dlopen.
_LIBC = ctypes.CDLL(None, use_errno=True)


@dataclass
class PeerOutcome:
    """What an unprivileged client saw."""

    refused: str | None
    reply: bytes
    error: str | None
    dac_kept: bool = False

    def describe(self) -> str:
        if self.refused:
            return f"connect refused ({self.refused})"
        tail = f", then {self.error}" if self.error else ""
        return f"reply {self.reply!r}{tail}"


def _keep_dac_override() -> bool:
    """In the child, after setuid: make CAP_DAC_OVERRIDE (only) effective again."""
    header = (ctypes.c_uint32 * 2)(_CAPABILITY_VERSION_3, 0)
    bit = 1 << CAP_DAC_OVERRIDE
    data = (ctypes.c_uint32 * 6)(bit, bit, 0, 0, 0, 0)  # effective, permitted, inheritable
    return int(_LIBC.capset(header, data)) == 0


def _child(uid: int, gid: int, path: str, data: bytes, timeout: float, out: int,
           keep_dac: bool) -> None:
    """Runs in the forked child: drop privileges, connect, send, read, report, exit."""
    status, body, dac = b"E", b"", b"0"
    try:
        if keep_dac:
            _LIBC.prctl(_PR_SET_KEEPCAPS, 1, 0, 0, 0)
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
        if keep_dac:
            dac = b"1" if _keep_dac_override() else b"0"
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
            except OSError:
                status = b"P"  # the server may already have refused and closed: read it
            try:
                while len(body) < 4096:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    body += chunk
            except OSError:
                status = b"P"
    finally:
        os.write(out, status + dac + body[:4096])
        os._exit(0)


def connect_as(uid: int, gid: int, path: Path | str, data: bytes, timeout: float, *,
               keep_dac_override: bool = False) -> PeerOutcome:
    """Connect as uid/gid, send data, read the reply until close."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        os.close(rfd)
        _child(uid, gid, str(path), data, timeout, wfd, keep_dac_override)
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
    if len(raw) < 2:
        raise RuntimeError("the unprivileged child reported nothing")
    status, kept, body = raw[:1], raw[1:2] == b"1", raw[2:]
    if status == b"R":
        return PeerOutcome(body.decode(errors="replace"), b"", None, kept)
    if status == b"E":
        raise RuntimeError(f"could not switch to uid {uid}")
    return PeerOutcome(None, body, "connection error" if status == b"P" else None, kept)
