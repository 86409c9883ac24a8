"""When each case body ran, to check which cases overlapped (the runner's pool, the gate)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any


class CaseClock:
    """Records when each case body ran (one span per case id)."""

    def __init__(self) -> None:
        self.spans: dict[str, tuple[float, float]] = {}
        self.lock = threading.Lock()

    def body(self, cid: str, seconds: float) -> Callable[[Any], None]:
        """A case body that sleeps ``seconds`` and records its span under ``cid``."""
        def run(ctx: Any) -> None:
            start = time.monotonic()
            time.sleep(seconds)
            with self.lock:
                self.spans[cid] = (start, time.monotonic())
        return run

    def overlap(self, a: str, b: str) -> bool:
        (a0, a1), (b0, b1) = self.spans[a], self.spans[b]
        return a0 < b1 and b0 < a1

    def overlaps(self, cid: str) -> list[str]:
        """The other cases whose span overlapped ``cid``'s."""
        return [other for other in self.spans if other != cid and self.overlap(cid, other)]
