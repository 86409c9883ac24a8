"""``--shard K/N``: a stable, balanced part of a run's (target, case) pairs.

Every shard computes the same assignment from the same plan, so N machines running the
same command with ``--shard 1/N`` ... ``--shard N/N`` check every pair exactly once.
The assignment is a greedy longest-first packing: pairs sorted by weight (heaviest
first; a stable hash breaks ties), each put on the shard whose load is lowest, where a
target not yet on a shard adds its set-up cost (a lab start, a module build) to that
shard. So a lab target's cases stay together unless they outweigh its set-up.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pamconform.core.errors import UsageError

#: A (target name, case id) pair.
Pair = tuple[str, str]


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (both from 1, as on the command line)."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse(text: str) -> Shard:
    """``K/N`` with 1 <= K <= N, else a usage error."""
    k, sep, n = text.partition("/")
    if not sep or not k.strip().isdigit() or not n.strip().isdigit():
        raise UsageError(f"--shard {text!r}: expected K/N, e.g. 2/3")
    shard = Shard(int(k), int(n))
    if not 1 <= shard.index <= shard.count:
        raise UsageError(f"--shard {text}: K must be between 1 and N")
    return shard


def _stable(pair: Pair) -> str:
    return hashlib.sha256(f"{pair[0]}\0{pair[1]}".encode()).hexdigest()


def assign(pairs: Sequence[Pair], count: int, *, weights: Mapping[Pair, float] | None = None,
           setup: Mapping[str, float] | None = None) -> dict[Pair, int]:
    """Each pair's shard (1 ... ``count``). ``weights``: a pair's expected seconds (1.0 if
    unknown); ``setup``: a target's cost on each shard that gets one of its cases."""
    weights, setup = weights or {}, setup or {}
    order = sorted(dict.fromkeys(pairs), key=lambda p: (-weights.get(p, 1.0), _stable(p)))
    loads = [0.0] * count
    holds: list[set[str]] = [set() for _ in range(count)]
    out: dict[Pair, int] = {}
    for pair in order:
        target = pair[0]

        def cost(i: int, target: str = target) -> tuple[float, int]:
            extra = 0.0 if target in holds[i] else setup.get(target, 0.0)
            return loads[i] + extra, i

        best = min(range(count), key=cost)
        loads[best] = cost(best)[0] + weights.get(pair, 1.0)
        holds[best].add(target)
        out[pair] = best + 1
    return out


def digest(plan: Mapping[str, Sequence[str]]) -> str:
    """A fingerprint of a run's plan (targets in order, each with its case ids in order)."""
    text = json.dumps([[name, list(ids)] for name, ids in plan.items()])
    return hashlib.sha256(text.encode()).hexdigest()
