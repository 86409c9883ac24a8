"""Logins for the commands that need one: ``--credentials``, ``--credentials-file``, or
the ``PAMCONFORM_CREDENTIALS`` environment variable.

``--credentials USER:PASSWORD`` is visible to every user of the host (``ps``), so the
other two exist: a private file of ``USER:PASSWORD`` lines, and an environment variable
holding the same lines (e.g. from a CI secret). The variable is read only when neither
option is given.
"""

from __future__ import annotations

import argparse
import os
import stat
from pathlib import Path

from pamconform.core.errors import UsageError
from pamconform.core.redaction import MIN_SECRET, register_login

ENV_VAR = "PAMCONFORM_CREDENTIALS"
#: A credentials file larger than this is not a list of logins.
MAX_FILE_BYTES = 1 << 20

Login = tuple[bytes, bytes]


def add_options(parser: argparse.ArgumentParser) -> None:
    """``--credentials`` and ``--credentials-file`` (the environment variable needs none)."""
    parser.add_argument("--credentials", action="append", default=[], metavar="USER:PASSWORD",
                        help="a valid login the server knows (repeatable; visible in ps: "
                        "prefer --credentials-file or $" + ENV_VAR + ")")
    parser.add_argument("--credentials-file", type=Path, metavar="FILE",
                        help="USER:PASSWORD lines; the file must be yours and private "
                        "(no group/other read or write)")


def parse_login(value: bytes, where: str) -> Login:
    """``USER:PASSWORD`` bytes to a pair; the password may contain ':'."""
    user, sep, password = value.partition(b":")
    if not sep or not user:  # without a ':' the value may be a password: not shown
        raise UsageError(f"{where}: expected USER:PASSWORD")
    if any(ch in value for ch in (b"\n", b"\0")):
        raise UsageError(f"{where} (user {show_user(user)}): newline or NUL cannot be sent")
    if len(password) < MIN_SECRET:
        # Such a password cannot be told from ordinary text, so no report could be
        # trusted to leave it out: refuse rather than write it in clear.
        raise UsageError(f"{where} (user {show_user(user)}): a password shorter than "
                         f"{MIN_SECRET} bytes cannot be kept out of the reports; use a longer "
                         "test login")
    register_login(user, password)  # from now on redacted wherever it is written
    return user, password


def show_user(user: bytes) -> str:
    """A user name for messages: its text, non-UTF-8 bytes escaped."""
    return user[:64].decode(errors="backslashreplace")


def parse_credentials(values: list[str]) -> list[Login]:
    """``--credentials`` values to byte pairs, taking the bytes as given (os.fsencode):
    a password that is not UTF-8 is sent as the bytes of the command line."""
    return [parse_login(os.fsencode(v), "--credentials") for v in values]


def parse_lines(data: bytes, where: str) -> list[Login]:
    """``USER:PASSWORD`` lines; empty lines and lines starting with '#' are skipped, a
    trailing CR is dropped (files written on Windows)."""
    logins = []
    for number, line in enumerate(data.split(b"\n"), 1):
        line = line.removesuffix(b"\r")
        if not line or line.startswith(b"#"):
            continue
        logins.append(parse_login(line, f"{where} line {number}"))
    return logins


def read_private_file(path: Path) -> bytes:
    """The bytes of a credentials file, refused unless it is a regular file (not a
    symlink) owned by the invoker and neither readable nor writable by group or others."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if os.path.islink(path):
            raise UsageError(f"--credentials-file {path}: is a symlink; give the file "
                             "itself") from None
        raise UsageError(f"--credentials-file {path}: {exc.strerror}") from None
    try:
        _check_private(path, os.fstat(fd))
        data = b""
        while len(data) <= MAX_FILE_BYTES:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            data += chunk
    except OSError as exc:
        raise UsageError(f"--credentials-file {path}: {exc.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_FILE_BYTES:
        raise UsageError(f"--credentials-file {path}: larger than {MAX_FILE_BYTES} bytes")
    return data


def _check_private(path: Path, st: os.stat_result) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise UsageError(f"--credentials-file {path}: not a regular file")
    if st.st_uid != os.geteuid():
        raise UsageError(f"--credentials-file {path}: owned by uid {st.st_uid}, not by "
                         f"you (uid {os.geteuid()})")
    if st.st_mode & 0o066:
        raise UsageError(f"--credentials-file {path}: readable or writable by group or "
                         f"others (mode {stat.S_IMODE(st.st_mode):04o}); chmod 600 it")


def gather(args: argparse.Namespace) -> list[Login]:
    """Every login given: ``--credentials`` and ``--credentials-file`` together, or else
    the environment variable."""
    logins = parse_credentials(args.credentials)
    path = getattr(args, "credentials_file", None)
    if path is not None:
        from_file = parse_lines(read_private_file(path), f"--credentials-file {path}")
        if not from_file:
            raise UsageError(f"--credentials-file {path}: no USER:PASSWORD line")
        logins += from_file
    if not logins:
        # a project file's target may name its own variable (credentials_env)
        var = getattr(args, "credentials_env", None) or ENV_VAR
        env = os.environb.get(var.encode())
        if env:
            logins = parse_lines(env, f"${var}")
    return logins


def given(args: argparse.Namespace) -> bool:
    """Whether a login was given on the command line (the variable does not count)."""
    return bool(args.credentials) or getattr(args, "credentials_file", None) is not None


NEED_ONE = ("give at least one valid login with --credentials-file FILE, $" + ENV_VAR +
            " or --credentials USER:PASSWORD")
