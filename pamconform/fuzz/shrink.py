"""Shrinking budgets, and a greedy descent over a model's candidate simplifications."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar


@dataclass
class Budget:
    """Replays and seconds a shrink may spend."""

    replays: int
    seconds: float
    used: int = 0
    started: float = 0.0

    def __post_init__(self) -> None:
        self.started = time.monotonic()

    @property
    def left(self) -> bool:
        return self.used < self.replays and time.monotonic() - self.started < self.seconds

    @property
    def elapsed(self) -> float:
        return round(time.monotonic() - self.started, 3)


C = TypeVar("C")
R = TypeVar("R")


def descend(start: C, candidates: Callable[[C], Iterable[C]], check: Callable[[C], R | None],
            budget: Budget, key: Callable[[C], Hashable]) -> tuple[C, R | None, dict[str, Any]]:
    """Greedy descent: take the first simpler candidate whose ``check`` gives a result
    (it still reproduces), until none does or the budget is spent; (the smallest, its
    last result, how it went)."""
    seen = {key(start)}
    last: R | None = None
    exhausted = False
    progress = True
    while progress:
        progress = False
        for cand in candidates(start):
            if key(cand) in seen:
                continue
            if not budget.left:
                exhausted = True
                break
            seen.add(key(cand))
            budget.used += 1
            got = check(cand)
            if got is not None:
                start, last, progress = cand, got, True
                break
    return start, last, {"replays": budget.used, "seconds": budget.elapsed,
                         "complete": not exhausted}
