"""Files only the invoking user can read: reports and findings (0700 dirs, 0600 files).

Modes are set explicitly, so they do not depend on the umask.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from datetime import datetime
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600
#: Report directories tried for one second before giving up (``<stamp>-2``, ``-3``...).
MAX_SAME_SECOND = 1000


def make_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) with mode 0700; an existing one is kept as is."""
    missing = []
    at = path
    while not at.exists() and at != at.parent:
        missing.append(at)
        at = at.parent
    for d in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(d, DIR_MODE)
            os.chmod(d, DIR_MODE)
    return path


def new_dir(base: Path, stamp: datetime) -> Path:
    """A new private directory ``base/<YYYYmmdd-HHMMSS>``, suffixed when that one exists.

    Creating it is the claim: two runs started in the same second get two directories.
    """
    make_dir(base)
    name = stamp.strftime("%Y%m%d-%H%M%S")
    for n in range(1, MAX_SAME_SECOND + 1):
        path = base / (name if n == 1 else f"{name}-{n}")
        try:
            os.mkdir(path, DIR_MODE)
        except FileExistsError:
            continue
        os.chmod(path, DIR_MODE)
        return path
    raise FileExistsError(f"{base}: {MAX_SAME_SECOND} report directories for {name} already")


def write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` with mode 0600 (also when the file existed), as UTF-8;
    a lone surrogate (a name that was not UTF-8) is written as ``\\udcNN``."""
    return write_bytes(path, text.encode("utf-8", "backslashreplace"))


def write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` with mode 0600, whole or not at all: a new file renamed
    over the old one, so a full disk, a kill or a crash never leaves half a file."""
    # a fresh random name (mode 0600): a file a killed run left never blocks this one
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(name)
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as f:
            fd = -1
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if fd != -1:
            os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path
