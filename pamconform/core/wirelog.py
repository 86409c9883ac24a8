"""Wire logs: every byte a case sends and receives, with timings, as evidence.

Rendered (:meth:`WireLog.as_list`, :meth:`WireLog.render`) with every password and token
the run knows as a marker, also one split across writes (:mod:`pamconform.core.redaction`).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from pamconform.core.redaction import current

#: Bytes of a single send/recv kept verbatim in the log; the rest is summarised.
MAX_LOGGED_BYTES = 256
#: Sends and receives of one connection listed one by one; later ones are summed up in
#: one event per direction (their bytes kept, unshown, up to MAX_ELIDED_RAW, so that
#: redaction still sees a secret the listed ones end in the middle of).
MAX_EVENTS_PER_CONN = 400
MAX_ELIDED_RAW = 4096


def show_bytes(data: bytes, limit: int = MAX_LOGGED_BYTES) -> str:
    """Render bytes as an escaped string, truncated with the total length.

    >>> show_bytes(b"alice\\n0")
    'alice\\\\n0'
    """
    text = repr(data[:limit])[2:-1]
    if len(data) > limit:
        text += f"... ({len(data)} bytes in all)"
    return text


@dataclass
class WireEvent:
    """One thing that happened on a connection."""

    t_ms: float
    conn: int
    event: str
    data: str = ""
    size: int = 0
    #: the bytes themselves (send and recv), for redaction across events
    raw: bytes | None = field(default=None, repr=False)
    #: a summary of this many later sends or receives of its connection (not shown)
    elided: int = 0

    def as_dict(self, shown: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"t_ms": round(self.t_ms, 2), "conn": self.conn, "event": self.event}
        if self.data or self.size:
            out["data"] = self.data if shown is None else shown
            out["size"] = self.size
        return out


@dataclass
class WireLog:
    """Events of all connections of one case, timed from the case's start."""

    started: float = field(default_factory=time.monotonic)
    events: list[WireEvent] = field(default_factory=list)
    _next_conn: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _kept: dict[int, int] = field(default_factory=dict, repr=False)
    _summaries: dict[tuple[int, str], WireEvent] = field(default_factory=dict, repr=False)

    def new_conn(self) -> int:
        with self._lock:
            self._next_conn += 1
            return self._next_conn

    def add(self, conn: int, event: str, data: bytes | str = b"") -> None:
        if isinstance(data, bytes):
            shown, size, raw = show_bytes(data), len(data), data
        else:
            shown, size, raw = data, 0, None
        t_ms = (time.monotonic() - self.started) * 1000
        with self._lock:
            if raw is not None and self._kept.get(conn, 0) >= MAX_EVENTS_PER_CONN:
                # a server dribbling a byte a read: the rest is summed up, not listed
                summary = self._summaries.get((conn, event))
                if summary is None:
                    summary = self._summaries[conn, event] = WireEvent(
                        t_ms, conn, event, raw=b"")
                    self.events.append(summary)
                summary.elided += 1
                summary.size += size
                assert summary.raw is not None
                summary.raw += raw[:max(0, MAX_ELIDED_RAW - len(summary.raw))]
                summary.data = (f"\u2026 {summary.elided} more {event} events, "
                                f"{summary.size} bytes (not shown)")
                return
            if raw is not None:  # only sends and receives count toward the cap
                self._kept[conn] = self._kept.get(conn, 0) + 1
            self.events.append(WireEvent(t_ms, conn, event, shown, size, raw))

    def _redacted(self) -> list[str]:
        """Each event's data with secrets as markers, per connection and direction."""
        with self._lock:
            events = list(self.events)
        shown = [e.data for e in events]
        streams: dict[tuple[int, str], list[int]] = {}
        for i, e in enumerate(events):
            if e.raw is not None:
                streams.setdefault((e.conn, e.event), []).append(i)
        for indexes in streams.values():
            chunks = [events[i].raw or b"" for i in indexes]
            for i, text in zip(indexes, current().chunks(chunks, MAX_LOGGED_BYTES),
                               strict=True):
                if text is not None and not events[i].elided:
                    shown[i] = text
        return shown

    def as_list(self) -> list[dict[str, Any]]:
        return [e.as_dict(d) for e, d in zip(self.events, self._redacted(), strict=False)]

    def render(self) -> str:
        """The log as text lines, one event a line."""
        lines = []
        for e, data in zip(self.events, self._redacted(), strict=False):
            detail = f" {data!s}" if data else ""
            lines.append(f"{e.t_ms:9.1f} ms  #{e.conn} {e.event:<8}{detail}")
        return "\n".join(lines)
