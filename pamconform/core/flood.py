"""Grading a server that took a whole flood of bytes with no end (R-S4, T-S2).

A server with a field limit stops reading long before the end of the flood: it answers
or closes. One that took all of it either kept it (memory any local client can make it
allocate, the attack the rule is about) or read and dropped it (bounded, but no field
limit). Closing the connection later, at an idle deadline, tells the two apart no better
than keeping it open does, since a client pushes megabytes a millisecond; the server's
memory does, when its pid is known and the flood shows in it (an allocator that reuses
what earlier cases freed may hide it: the grade then stays NON-STRICT, never a FAIL
without evidence).
"""

from __future__ import annotations

from typing import Any

from pamconform.core import procstat
from pamconform.core.outcome import Fail

#: Resident memory a flood must add for the server to count as having kept it.
KEPT_KIB = 2048


def rss(pid: int | None) -> int | None:
    """The server's resident memory now (None: no pid, or unreadable). Taken before the
    flood and right after its last write, while the server still holds what it read (a
    one-shot server exits once it has replied)."""
    return procstat.rss_kib(pid) if pid is not None else None


def took_all_of_it(ctx: Any, sent: int, *, still_open: bool, pid: int | None,
                   before_kib: int | None, after_kib: int | None) -> None:
    """Grade a server that read all ``sent`` bytes of the flood: FAIL when it kept the
    connection open, or when its memory grew by :data:`KEPT_KIB`; otherwise NON-STRICT
    (bounded memory, or not known without the pid, but no field limit)."""
    if still_open:
        raise Fail(f"the server to give up before {sent} bytes",
                   f"it read all {sent} bytes and kept the connection open")
    if before_kib is not None and after_kib is not None:
        grown = after_kib - before_kib
        ctx.note(f"server pid {pid}: resident memory {before_kib} KiB before the flood, "
                 f"{after_kib} KiB at its end")
        if grown >= KEPT_KIB:
            raise Fail(f"the server to give up before {sent} bytes",
                       f"it read all {sent} bytes, then closed; its memory grew by "
                       f"{grown} KiB: it kept them")
        ctx.non_strict(f"the server read all {sent} bytes before it closed: it dropped "
                       f"them (memory grew by {grown} KiB), but has no field limit")
        return
    ctx.non_strict(f"the server read all {sent} bytes before it closed: no field limit "
                   "(with the server's pid its memory would tell whether it kept them)")
