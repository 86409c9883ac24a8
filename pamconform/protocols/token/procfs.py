"""Which processes hold a listening UNIX socket (Linux /proc), to signal them safely."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

_ACCEPTCON = 0x10000  # __SO_ACCEPTCON: a listening socket


def listening_inodes(path: Path | str) -> set[int]:
    """Inodes of listening sockets bound to ``path`` (this network namespace)."""
    # as typed, and as the server may have bound it (absolute, links resolved)
    want = {str(path), os.path.abspath(path), os.path.realpath(path)}
    found: set[int] = set()
    with contextlib.suppress(OSError), open("/proc/net/unix", encoding="utf-8",
                                            errors="replace") as f:
        next(f, None)
        for line in f:
            parts = line.split()
            if len(parts) >= 8 and parts[7] in want and int(parts[3], 16) & _ACCEPTCON:
                found.add(int(parts[6]))
    return found


def holders(path: Path | str, pids: list[int] | None = None) -> set[int]:
    """Pids (among ``pids``, or all) with an fd on a socket listening at ``path``."""
    inodes = {f"socket:[{i}]" for i in listening_inodes(path)}
    if not inodes:
        return set()
    candidates = pids if pids is not None else [int(p) for p in os.listdir("/proc")
                                                if p.isdigit()]
    out: set[int] = set()
    for pid in candidates:
        fd_dir = f"/proc/{pid}/fd"
        with contextlib.suppress(OSError):
            for fd in os.listdir(fd_dir):
                with contextlib.suppress(OSError):
                    if os.readlink(f"{fd_dir}/{fd}") in inodes:
                        out.add(pid)
                        break
    return out
