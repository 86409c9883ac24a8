"""Connect as an unprivileged uid that keeps CAP_DAC_OVERRIDE (needs a root harness).

Such a client gets through any socket file mode, so only the server's own peer check
(``SO_PEERCRED``) can stop it: that is what T-S4 asks for.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import socket
import time

from pamconform.peer import PeerOutcome

_PR_SET_KEEPCAPS = 8
_CAPABILITY_VERSION_3 = 0x20080522
CAP_DAC_OVERRIDE = 1

# Resolved here, in the parent: the forked child of a threaded harness must not dlopen.
_LIBC = ctypes.CDLL(None, use_errno=True)
_prctl = _LIBC.prctl
_capset = _LIBC.capset


def _keep_dac_override() -> bool:
    """In the child, after setuid: make CAP_DAC_OVERRIDE (only) effective again."""
    header = (ctypes.c_uint32 * 2)(_CAPABILITY_VERSION_3, 0)
    bit = 1 << CAP_DAC_OVERRIDE
    data = (ctypes.c_uint32 * 6)(bit, bit, 0, 0, 0, 0)  # effective, permitted, inheritable
    return int(_capset(header, data)) == 0


def _child(uid: int, gid: int, path: str, data: bytes, timeout: float, out: int) -> None:
    status, body = b"E", b""
    dac = b"0"
    try:
        _prctl(_PR_SET_KEEPCAPS, 1, 0, 0, 0)
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
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


def connect_as_privileged_stranger(
    uid: int, gid: int, path: str, data: bytes, timeout: float
) -> tuple[PeerOutcome, bool]:
    """Connect as uid/gid keeping CAP_DAC_OVERRIDE, send data, read until close.

    Returns the outcome and whether the capability was kept (if not, the socket's mode
    may have kept the client out before the server could check it).
    """
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        os.close(rfd)
        _child(uid, gid, path, data, timeout, wfd)
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
        return PeerOutcome(body.decode(errors="replace"), b"", None), kept
    if status == b"E":
        raise RuntimeError(f"could not switch to uid {uid}")
    return PeerOutcome(None, body, "connection error" if status == b"P" else None), kept
