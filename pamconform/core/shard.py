"""``--shard K/N``: a stable, balanced part of a run's (target, case) pairs.

Every shard computes the same assignment from the same plan, so N machines running the
same command with ``--shard 1/N`` ... ``--shard N/N`` check every pair exactly once.
The assignment is a greedy longest-first packing by expected seconds (a stable hash
breaks ties, so the order of the input does not matter): a target with a set-up cost
(a lab start, a module build) is split only into parts whose cases outweigh that cost,
so a lab target's quick cases stay together on one shard.
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


#: The most shards a run may be split into.
MAX_SHARDS = 10_000


def parse(text: str) -> Shard:
    """``K/N`` with 1 <= K <= N <= MAX_SHARDS, else a usage error."""
    k, sep, n = (part.strip() for part in text.partition("/"))
    if not sep or not all(p.isascii() and p.isdigit() for p in (k, n)):
        raise UsageError(f"--shard {text!r}: expected K/N, e.g. 2/3")
    shard = Shard(int(k), int(n))
    if not 1 <= shard.index <= shard.count:
        raise UsageError(f"--shard {text}: K must be between 1 and N")
    if shard.count > MAX_SHARDS:
        raise UsageError(f"--shard {text}: at most {MAX_SHARDS} shards")
    return shard


def _stable(pair: Pair) -> str:
    return hashlib.sha256(f"{pair[0]}\0{pair[1]}".encode()).hexdigest()


def assign(pairs: Sequence[Pair], count: int, *, weights: Mapping[Pair, float] | None = None,
           setup: Mapping[str, float] | None = None) -> dict[Pair, int]:
    """Each pair's shard (1 ... ``count``). ``weights``: a pair's expected seconds (1.0 if
    unknown); ``setup``: a target's cost on each shard that gets one of its cases.

    Targets go heaviest first (set-up plus cases). A target is split over ``p`` shards,
    the least loaded ones, where each part's cases take at least its set-up (``p`` is 1
    for a lab target whose cases are quick, every shard for a target with no set-up);
    within them, its cases go heaviest first to the part with the least load.
    """
    weights, setup = weights or {}, setup or {}
    groups: dict[str, list[Pair]] = {}
    for pair in dict.fromkeys(pairs):
        groups.setdefault(pair[0], []).append(pair)

    def work(group: list[Pair]) -> float:
        return sum(weights.get(p, 1.0) for p in group)

    loads = [0.0] * count
    out: dict[Pair, int] = {}
    for target in sorted(groups, key=lambda t: (-(setup.get(t, 0.0) + work(groups[t])),
                                                _stable((t, "")))):
        group = sorted(groups[target], key=lambda p: (-weights.get(p, 1.0), _stable(p)))
        cost = setup.get(target, 0.0)
        parts = count if cost <= 0 else min(count, max(1, int(work(group) // cost)))
        chosen = sorted(range(count), key=lambda i: (loads[i], i))[:parts]
        used: set[int] = set()
        for pair in group:
            best = min(chosen, key=lambda i: (loads[i] + (0.0 if i in used else cost), i))
            loads[best] += weights.get(pair, 1.0) + (0.0 if best in used else cost)
            used.add(best)
            out[pair] = best + 1
    return out


def digest(plan: Mapping[str, Sequence[str]]) -> str:
    """A fingerprint of a run's plan (targets in order, each with its case ids in order)."""
    text = json.dumps([[name, list(ids)] for name, ids in plan.items()])
    return hashlib.sha256(text.encode()).hexdigest()
