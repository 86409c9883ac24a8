"""Checks before a run starts that know no protocol: the socket, the report directory.

Each raises UsageError (exit 2) with one line, so that bad input costs one line, not a
run. The login checks belong to each protocol (``protocols/<name>/login_check.py``).
"""

from __future__ import annotations

import errno
import os
import socket
import stat
import tempfile
from pathlib import Path

from pamconform.core.errors import UsageError
from pamconform.core.redaction import shown_data

#: sun_path holds 108 bytes including the terminating NUL.
MAX_SOCKET_PATH = 107
#: Tries per login, and the pause between them: only when the server gave no clear
#: answer (no connection, no reply, a malformed one). A denial is final: trying a wrong
#: password again could lock the account on a server that counts failures.
LOGIN_TRIES = 3
RETRY_PAUSE_S = 0.2
#: Characters of a refused login's reply an error line shows.
MAX_SHOWN = 40


def check_socket_path(path: Path) -> None:
    """A path that cannot fit in ``sun_path`` can never be connected to."""
    size = len(os.fsencode(path))
    if size > MAX_SOCKET_PATH:
        raise UsageError(f"{str(path)[:60]}...: socket path is {size} bytes; a UNIX socket "
                         f"path is at most {MAX_SOCKET_PATH} bytes")


def check_socket(path: Path, timeout: float) -> None:
    """Fail with one clear line if nothing usable listens at path."""
    check_socket_path(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise UsageError(f"{path}: no such socket") from None
    except PermissionError:
        raise UsageError(f"{path}: permission denied (run as a user that may reach it)") from None
    except OSError as exc:
        raise UsageError(f"{path}: {exc.strerror}") from None
    if not stat.S_ISSOCK(st.st_mode):
        raise UsageError(f"{path}: not a socket")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        try:
            s.connect(str(path))
        except ConnectionRefusedError:
            raise UsageError(f"{path}: nothing is listening on this socket") from None
        except PermissionError:
            raise UsageError(f"{path}: permission denied connecting "
                             "(run as root or a user the socket admits)") from None
        except OSError as exc:
            raise UsageError(f"{path}: cannot connect: {errno.errorcode.get(exc.errno or 0)} "
                             f"{exc.strerror}") from None


def no_grant(data: bytes, timed_out: bool, elapsed_s: float) -> str:
    """Why a reply to a valid login was no grant, in a few words (never the request)."""
    if data:  # the server's bytes, which may echo the request: redacted as data
        return f"reply {shown_data(data, MAX_SHOWN)}"
    if timed_out:
        return f"no reply within {elapsed_s:.1f} s"
    return "no reply: the server closed the connection"


def check_report_dir(directory: Path | None, default_base: Path = Path("reports"), *,
                     option: str = "--report") -> None:
    """The report directory (or the default base) must be creatable and writable."""
    path = directory if directory is not None else default_base
    option = f"{option} {directory}" if directory is not None else f"{default_base}/"
    probe = path
    while not probe.exists() and not probe.is_symlink():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise UsageError(f"{option}: {probe} is not a directory")
    try:
        made = tempfile.mkdtemp(prefix=".pamconform-probe-", dir=probe)
    except OSError as exc:
        raise UsageError(f"{option}: cannot write in {probe}: {exc.strerror}") from None
    os.rmdir(made)
