"""Checks before a run starts, so that bad input costs one line, not a run.

Each raises UsageError (exit 2) with one line: an unusable socket, a login the server
refuses, a token command whose fresh token is refused, a report directory that cannot be
written. A wrong password would otherwise show up as a FAIL of every case.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from pamconform.core.credentials import Login, show_user
from pamconform.core.errors import UsageError
from pamconform.core.wirelog import WireLog

if TYPE_CHECKING:
    from pamconform.protocols.token.target import TokenServerTarget

#: sun_path holds 108 bytes including the terminating NUL.
MAX_SOCKET_PATH = 107
#: Tries per login, and the pause between them: only when the server gave no clear
#: answer (no connection, no reply, a malformed one). A denial is final: trying a wrong
#: password again could lock the account on a server that counts failures.
LOGIN_TRIES = 3
RETRY_PAUSE_S = 0.2


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


def check_logins(path: Path, logins: list[Login], timeout: float, *,
                 tries: int = LOGIN_TRIES) -> None:
    """Each login must be granted (at most ``tries`` tries of ``timeout`` each)."""
    for user, password in logins:
        why = login_refused(path, user, password, timeout, tries=tries)
        if why is not None:
            raise UsageError(f"the server refused {show_user(user)}'s login ({why}): "
                             "check --credentials")


def login_refused(path: Path | str, user: bytes, password: bytes, timeout: float, *,
                  tries: int = LOGIN_TRIES) -> str | None:
    """None if the server grants this login, else what it replied the last time
    (never the password)."""
    from pamconform.protocols.redirector.client import ConnectFailed, exchange, request

    why = "no try"
    for attempt in range(tries):
        if attempt:
            time.sleep(RETRY_PAUSE_S)
        try:
            reply = exchange(path, WireLog(), request(user, password), timeout=timeout)
        except (ConnectFailed, OSError) as exc:
            why = f"no connection: {exc}"
            continue
        if reply.kind.grants:
            return None
        why = _no_grant(reply.data, reply.timed_out, reply.elapsed_s)
        if reply.kind.denies:
            break
    return why


def _no_grant(data: bytes, timed_out: bool, elapsed_s: float) -> str:
    if data:
        return f"reply {data[:16]!r}"
    if timed_out:
        return f"no reply within {elapsed_s:.1f} s"
    return "no reply: the server closed the connection"


def check_token_command(target: TokenServerTarget) -> None:
    """A fresh token from the token command must be granted. Tokens are single use, so
    this spends one of its own; the cases mint their own afterwards."""
    from pamconform.protocols.token.client import ReplyKind, exchange
    from pamconform.protocols.token.minting import MintFailed

    if target.source.one_shot:
        return  # the one --token cannot be checked without spending it
    why = "no try"
    for attempt in range(LOGIN_TRIES):
        if attempt:
            time.sleep(RETRY_PAUSE_S)
        try:
            minted = target.source.mint()
        except MintFailed as exc:
            raise UsageError(f"--token-command: {exc}") from None
        reply = exchange(minted.socket, WireLog(), minted.token.raw, timeout=target.timeout)
        if reply.grants:
            return
        why = (f"no connection: {reply.refused}" if reply.refused is not None
               else _no_grant(reply.data, reply.timed_out, reply.elapsed_s))
        if reply.kind is ReplyKind.FAIL:
            break
    raise UsageError(f"the server refused a fresh token from --token-command ({why}): "
                     "check --token-command")


def check_report_dir(directory: Path | None, default_base: Path = Path("reports")) -> None:
    """The report directory (or the default base) must be creatable and writable."""
    path = directory if directory is not None else default_base
    option = f"--report {directory}" if directory is not None else f"{default_base}/"
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
