"""Read a JSON file given on the command line, bounded in size and nesting depth.

A huge file (or /dev/zero) is refused after ``max_bytes``; JSON nested deeper than the
interpreter's recursion limit is refused instead of crashing the parser.
"""

from __future__ import annotations

import json
import math
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


#: The most digits an integer of a file pamconform reads may have (its own write far
#: fewer: counts, milliseconds, seeds); a float must be finite.
MAX_INT_DIGITS = 18


class _Number(ValueError):
    """A number no file of pamconform's holds (too long, not finite)."""


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _Number(f"an integer of {len(text.lstrip('-'))} digits")
    return int(text)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Number(f"the number {text[:20]} (too large)")
    return value


def _constant(name: str) -> float:
    raise _Number(f"{name} (not a number JSON allows)")


def load(path: Path, *, max_bytes: int = MAX_BYTES) -> Any:
    """The parsed JSON of ``path``; JsonFileError (one line) if it cannot be had, also
    for a number no file of pamconform's holds (later arithmetic would overflow)."""
    text = read_text(path, max_bytes=max_bytes)
    try:
        return json.loads(text, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except json.JSONDecodeError as exc:
        raise JsonFileError(f"{path}: not JSON (line {exc.lineno}: {exc.msg})") from None
    except _Number as exc:
        raise JsonFileError(f"{path}: {exc}") from None
    except RecursionError:
        raise JsonFileError(f"{path}: JSON nested too deeply") from None
