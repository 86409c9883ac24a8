"""The child processes of a process, read from ``/proc`` (tests that check nothing is left
behind after an interrupt)."""

from __future__ import annotations

from pathlib import Path


def children(pid: int) -> dict[int, str]:
    """The child processes (pid: command line) of ``pid``."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(stat.rpartition(")")[2].split()[1]) == pid:
            out[int(entry.name)] = cmdline
    return out
