"""One nslcd exchange on a UNIX socket, every step bounded by one deadline.

:func:`exchange` connects, writes a request, reads until the reply decodes, and returns a
typed :class:`Outcome`: a :class:`Reply` or one of the :class:`Failure` kinds (connect
refused, timeout in a named phase, peer closed or reset early, undecodable reply, reply
too large). It never raises for anything the peer does. Standard library only.
"""

# Not shared with core/wire.py (the redirector and token clients' connection), though it
# does the same job (connect, write chunks with pauses, read under a bound): lab.py copies
# this package's codec, client, driver and probe alone into the nslcd container, where the
# probe runs on the container's bare python3 with no pamconform installed. So this file
# must stay standard-library only and import nothing but its siblings.

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from . import codec

#: Largest reply read before giving up (a PAM reply is a few hundred bytes).
MAX_REPLY = 64 * 1024
DEFAULT_TIMEOUT = 5.0


@dataclass(frozen=True)
class Failure:
    """Why no reply was obtained. ``kind`` is one of the constants below."""

    CONNECT = "connect"      # socket missing, refused, or connect timed out
    TIMEOUT = "timeout"      # the deadline passed in ``phase`` (connect/write/read)
    CLOSED = "closed"        # EOF before a complete reply
    RESET = "reset"          # connection reset / broken pipe
    MALFORMED = "malformed"  # the bytes can never be a valid reply (``detail`` says why)
    TOO_LARGE = "too-large"  # more than ``max_reply`` bytes without a complete reply

    kind: str
    detail: str
    phase: str = ""
    received: bytes = b""
    elapsed_s: float = 0.0


@dataclass(frozen=True)
class Answer:
    """A decoded reply, the raw bytes it came from and what followed it."""

    reply: codec.Reply
    received: bytes
    trailing: int  # bytes after RESULT_END in what was read
    elapsed_s: float


Outcome = Answer | Failure


def _phase_timeout(sock: socket.socket, deadline: float) -> bool:
    left = deadline - time.monotonic()
    if left <= 0:
        return False
    sock.settimeout(left)
    return True


def exchange(
    path: str,
    request: codec.Request | bytes | Iterable[bytes],
    expect: int | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    pause: float = 0.0,
    max_reply: int = MAX_REPLY,
    max_string: int = codec.MAX_STRING,
) -> Outcome:
    """Send ``request`` to the daemon at ``path`` and read its reply within ``timeout`` s.

    ``request`` is a typed request, raw bytes, or several chunks written separately with
    ``pause`` seconds between them (to test split writes). ``expect`` is the action whose
    reply shape to decode (default: the typed request's action; required for raw bytes).
    """
    if isinstance(request, codec.Request):
        chunks = [request.encode()]
        expect = request.action if expect is None else expect
    elif isinstance(request, bytes | bytearray):
        chunks = [bytes(request)]
    else:
        chunks = [bytes(c) for c in request]
    if expect is None:
        raise ValueError("expect is required for a raw request")
    start = time.monotonic()
    deadline = start + timeout

    def failed(kind: str, detail: str, phase: str = "", received: bytes = b"") -> Failure:
        return Failure(kind, detail, phase, received, time.monotonic() - start)

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        try:
            sock.connect(path)
        except TimeoutError:
            return failed(Failure.TIMEOUT, "connect timed out", "connect")
        except OSError as exc:
            return failed(Failure.CONNECT, f"{type(exc).__name__}: {exc.strerror or exc}",
                          "connect")
        for i, chunk in enumerate(chunks):
            if i and pause:
                time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            if not _phase_timeout(sock, deadline):
                return failed(Failure.TIMEOUT, "deadline passed before the write", "write")
            try:
                sock.sendall(chunk)
            except TimeoutError:
                return failed(Failure.TIMEOUT, "peer stopped reading", "write")
            except (BrokenPipeError, ConnectionResetError) as exc:
                return failed(Failure.RESET, type(exc).__name__, "write")
        return _read_reply(sock, expect, deadline, max_reply, max_string, failed, start)
    finally:
        sock.close()


def _read_reply(
    sock: socket.socket,
    expect: int,
    deadline: float,
    max_reply: int,
    max_string: int,
    failed: Callable[..., Failure],
    start: float,
) -> Outcome:
    data = b""
    while True:
        if not _phase_timeout(sock, deadline):
            return failed(Failure.TIMEOUT, "no complete reply in time", "read", data)
        try:
            chunk = sock.recv(min(65536, max_reply + 1 - len(data)))
        except TimeoutError:
            return failed(Failure.TIMEOUT, "no complete reply in time", "read", data)
        except ConnectionResetError:
            return failed(Failure.RESET, "connection reset while reading", "read", data)
        if not chunk:
            try:
                codec.decode_reply(data, expect, max_string=max_string)
            except codec.Truncated as exc:
                return failed(Failure.CLOSED, f"EOF after {len(data)} bytes ({exc})", "read",
                              data)
            except codec.DecodeError as exc:
                return failed(Failure.MALFORMED, str(exc), "read", data)
            return failed(Failure.CLOSED, "EOF", "read", data)  # unreachable: decoded earlier
        data += chunk
        try:
            reply, used = codec.decode_reply(data, expect, max_string=max_string)
        except codec.Truncated:
            if len(data) > max_reply:
                return failed(Failure.TOO_LARGE, f"more than {max_reply} bytes", "read", data)
            continue
        except codec.DecodeError as exc:
            return failed(Failure.MALFORMED, str(exc), "read", data)
        return Answer(reply, data, len(data) - used, time.monotonic() - start)
