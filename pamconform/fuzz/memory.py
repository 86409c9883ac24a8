"""Watching a server's resident memory (``/proc/PID/status`` VmRSS) while it is fuzzed."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

from pamconform.core.procstat import rss_kib

__all__ = ["MemoryWatch", "rss_kib"]


@dataclass
class MemoryWatch:
    """Samples RSS at most every ``interval`` seconds; judges growth at the end.

    Unbounded growth means: the last quarter of the samples sits more than ``limit_mib``
    above the lowest early sample, and the last third still rose by more than an eighth
    of the limit over the third before (it is still rising, not a plateau). The limit is
    generous on purpose: a threaded server running a memory-hard KDF keeps a KDF's
    working memory in each malloc arena (up to 8 per core), which looks like growth for
    a while; here the reference server levels off about 250 MiB above its start.
    """

    pid: int
    limit_mib: float = 512.0
    interval: float = 0.1
    samples: list[tuple[float, int]] = field(default_factory=list)
    _start: float = field(default_factory=time.monotonic)
    _next: float = 0.0

    def sample(self, force: bool = False) -> bool:
        """Take a sample if one is due; True if one was taken."""
        now = time.monotonic()
        if not force and now < self._next:
            return False
        self._next = now + self.interval
        kib = rss_kib(self.pid)
        if kib is None:
            return False
        self.samples.append((now - self._start, kib))
        return True

    def growth_mib(self) -> float:
        if len(self.samples) < 4:
            return 0.0
        q = max(1, len(self.samples) // 4)
        early = min(k for _, k in self.samples[:q])
        late = statistics.median(k for _, k in self.samples[-q:])
        return (late - early) / 1024

    def unbounded(self) -> bool:
        if len(self.samples) < 9:
            return False
        t = len(self.samples) // 3
        second = max(k for _, k in self.samples[-2 * t : -t])
        last = max(k for _, k in self.samples[-t:])
        return self.growth_mib() > self.limit_mib and (last - second) / 1024 > self.limit_mib / 8

    def summary(self) -> dict[str, object]:
        kib = [k for _, k in self.samples]
        step = max(1, len(self.samples) // 40)
        return {
            "pid": self.pid,
            "samples": len(kib),
            "first_kib": kib[0] if kib else None,
            "max_kib": max(kib) if kib else None,
            "last_kib": kib[-1] if kib else None,
            "growth_mib": round(self.growth_mib(), 1),
            "limit_mib": self.limit_mib,
            "series_kib": [[round(t, 2), k] for t, k in self.samples[::step]],
        }
