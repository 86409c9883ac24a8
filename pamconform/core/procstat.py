"""What /proc says about a process: its open descriptors and resident memory.

Used as evidence of a server's resource growth when its PID is given (``--pid``).
Every reader returns None when the process is gone or its entries are not readable
(another user's process, no /proc).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass


def fd_count(pid: int) -> int | None:
    """How many descriptors the process has open, or None if that is unreadable."""
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def rss_kib(pid: int) -> int | None:
    """The process's VmRSS in KiB, or None if it is gone or unreadable."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


@dataclass(frozen=True)
class Sample:
    """Descriptors and memory of a process at one moment (None: unreadable)."""

    fds: int | None
    rss_kib: int | None


def settled_sample(pid: int, wait: float = 1.0, step: float = 0.05) -> Sample:
    """A sample once the descriptor count has stopped falling (connections that were
    just served are still being closed), waiting at most ``wait`` seconds."""
    deadline = time.monotonic() + wait
    fds = fd_count(pid)
    while fds is not None and time.monotonic() < deadline:
        time.sleep(step)
        now = fd_count(pid)
        if now is None or now >= fds:
            fds = now if now is not None else fds
            break
        fds = now
    return Sample(fds, rss_kib(pid))
