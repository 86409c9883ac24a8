"""Validated argparse types for time and count options, one of each, used everywhere.

A bad value (``nan``, ``inf``, negative, zero where not allowed, absurdly large) is an
argparse error, which the CLI turns into one line and exit 2.

    >>> Seconds()("2.5"), Count(allow_zero=True)("0")
    (2.5, 0)
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

#: No time option may exceed this (a week): a larger value is a typo, not a plan.
MAX_SECONDS = 7 * 24 * 3600.0
#: No count option may exceed this.
MAX_COUNT = 10**9


class Seconds:
    """A finite number of seconds: > 0 (or >= 0 with ``allow_zero``), at most ``maximum``."""

    def __init__(self, *, allow_zero: bool = False, maximum: float = MAX_SECONDS,
                 minimum: float = 0.0) -> None:
        self.allow_zero = allow_zero
        self.maximum = maximum
        self.minimum = minimum
        self.__name__ = "seconds"  # argparse names the type in its messages

    def __call__(self, text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number of seconds: {text!r}")
        if value < 0 or (value == 0 and not self.allow_zero):
            least = "must not be negative" if self.allow_zero else "must be positive"
            raise argparse.ArgumentTypeError(f"{least}: {text!r}")
        if value < self.minimum:
            raise argparse.ArgumentTypeError(f"at least {self.minimum:g} seconds: {text!r}")
        if value > self.maximum:
            raise argparse.ArgumentTypeError(f"at most {self.maximum:g} seconds: {text!r}")
        return value


class Count:
    """A whole number: >= 1 (or >= 0 with ``allow_zero``), at most ``maximum``."""

    def __init__(self, *, allow_zero: bool = False, maximum: int = MAX_COUNT,
                 what: str = "a whole number") -> None:
        self.allow_zero = allow_zero
        self.maximum = maximum
        self.what = what
        self.__name__ = "count"

    def __call__(self, text: str) -> int:
        if not (text.isascii() and text.isdigit()):  # int() also takes "+4", "1_0", "٣"
            raise argparse.ArgumentTypeError(f"not {self.what}: {text!r}")
        value = int(text, 10)
        least = 0 if self.allow_zero else 1
        if value < least:
            raise argparse.ArgumentTypeError(f"must be at least {least}: {text!r}")
        if value > self.maximum:
            raise argparse.ArgumentTypeError(f"at most {self.maximum}: {text!r}")
        return value


#: The common cases, ready to pass as ``type=``.
SECONDS = Seconds()
SECONDS_OR_ZERO = Seconds(allow_zero=True)
#: How long to wait for a reply: under 10 ms is a typo, and would fail a correct server.
REPLY_SECONDS = Seconds(minimum=0.01)
#: A process id (``--pid``).
PID = Count(maximum=1 << 22, what="a process id")
COUNT = Count()
COUNT_OR_ZERO = Count(allow_zero=True)


def directory(text: str) -> Path:
    """A directory argument (``--report``): an empty one would be the current directory."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path (give a directory)")
    return Path(text)


directory.__name__ = "directory"


def target_name(text: str) -> str:
    """A target's name (``--name``): shown in reports and on the console, so printable
    (a newline in it would forge an output line)."""
    if not text or not text.isprintable():
        raise argparse.ArgumentTypeError(f"a name of printable characters: {text!r}")
    return text


target_name.__name__ = "name"
