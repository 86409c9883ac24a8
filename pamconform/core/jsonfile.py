"""Read a JSON file given on the command line, bounded in size and nesting depth.

A huge file (or /dev/zero) is refused after ``max_bytes``; JSON nested deeper than the
interpreter's recursion limit is refused instead of crashing the parser.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

#: Reports with full wire evidence stay well below this.
MAX_BYTES = 64 << 20


class JsonFileError(ValueError):
    """The file cannot be read as JSON; the message names the file and says why."""


def read_text(path: Path, *, max_bytes: int = MAX_BYTES) -> str:
    """The UTF-8 text of the regular file ``path``, at most ``max_bytes``; JsonFileError
    (one line) otherwise: a FIFO, a device or a socket is refused without hanging."""
    try:
        # O_NONBLOCK: a FIFO with no writer must not hang the open
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise JsonFileError(f"{path}: not a regular file")
            data = f.read(max_bytes + 1)
    except FileNotFoundError:
        raise JsonFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise JsonFileError(f"{path}: is a directory") from None
    except OSError as exc:
        raise JsonFileError(f"{path}: cannot read: {exc.strerror}") from None
    if len(data) > max_bytes:
        limit = f"{max_bytes >> 20} MiB" if max_bytes >= 1 << 20 else f"{max_bytes} bytes"
        raise JsonFileError(f"{path}: larger than {limit}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise JsonFileError(f"{path}: not UTF-8 text") from None


def load(path: Path, *, max_bytes: int = MAX_BYTES) -> Any:
    """The parsed JSON of ``path``; JsonFileError (one line) if it cannot be had."""
    text = read_text(path, max_bytes=max_bytes)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise JsonFileError(f"{path}: not JSON (line {exc.lineno}: {exc.msg})") from None
    except RecursionError:
        raise JsonFileError(f"{path}: JSON nested too deeply") from None
