"""Shrinking a finding to a minimal reproducer, within a replay and time budget.

Steps, each kept only if the finding still reproduces:

1. simpler delivery: one write instead of many, no pauses, half-close;
2. fewer chunks: merge neighbours;
3. fewer bytes: delta debugging (ddmin) over each chunk (not for ``valid-denied``,
   whose bytes must stay a known-valid request);
4. closer to a valid request: where the reproducer has the length of a valid
   request, put back its bytes one at a time (so ``alice\\nAlice-auth-pw\\n`` shows the
   one flipped byte that matters).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import replace

from pamconform.fuzz.shrink import Budget
from pamconform.protocols.redirector.fuzz_items import Exec

Check = Callable[[Exec], bool]


class Shrinker:
    def __init__(self, check: Check, budget: Budget, *, keep_bytes: bool,
                 valid: Iterable[bytes] = ()) -> None:
        self._check = check
        self.budget = budget
        self.keep_bytes = keep_bytes
        self.valid = list(valid)
        self.exhausted = False
        self._seen: dict[bytes, bool] = {}

    def test(self, ex: Exec) -> bool:
        key = ex.key()
        if key in self._seen:
            return self._seen[key]
        if not self.budget.left:
            self.exhausted = True
            return False
        self.budget.used += 1
        ok = self._check(ex)
        self._seen[key] = ok
        return ok

    def run(self, ex: Exec) -> Exec:
        ex = self._delivery(ex)
        ex = self._merge(ex)
        if not self.keep_bytes:
            ex = self._ddmin_chunks(ex)
            ex = self._towards_valid(ex)
        return ex

    def _delivery(self, ex: Exec) -> Exec:
        if len(ex.chunks) > 1:
            one = replace(ex, chunks=(ex.payload,), pauses=())
            if self.test(one):
                return self._delivery(one)
        if any(ex.pauses):
            calm = replace(ex, pauses=())
            if self.test(calm):
                ex = calm
        if not ex.shutdown:
            shut = replace(ex, shutdown=True)
            if self.test(shut):
                ex = shut
        return ex

    def _merge(self, ex: Exec) -> Exec:
        i = 0
        while i < len(ex.chunks) - 1 and self.budget.left:
            chunks = list(ex.chunks)
            pauses = list(ex.pauses) + [0.0] * (len(chunks) - 1 - len(ex.pauses))
            chunks[i : i + 2] = [chunks[i] + chunks[i + 1]]
            del pauses[i]
            cand = replace(ex, chunks=tuple(chunks), pauses=tuple(pauses))
            if self.test(cand):
                ex = cand
            else:
                i += 1
        return ex

    def _ddmin_chunks(self, ex: Exec) -> Exec:
        for idx in range(len(ex.chunks)):
            if idx >= len(ex.chunks):
                break

            def with_chunk(data: bytes, ex: Exec = ex, idx: int = idx) -> Exec:
                chunks = list(ex.chunks)
                chunks[idx] = data
                return replace(ex, chunks=tuple(chunks))

            def test_chunk(data: bytes, with_chunk: Callable[[bytes], Exec] = with_chunk) -> bool:
                return self.test(with_chunk(data))

            ex = with_chunk(self._ddmin(ex.chunks[idx], test_chunk))
        return ex

    def _ddmin(self, data: bytes, test: Callable[[bytes], bool]) -> bytes:
        """Zeller's ddmin over bytes: remove ever smaller slices while it reproduces."""
        n = 2
        while len(data) >= 2 and self.budget.left:
            size = max(1, len(data) // n)
            removed = False
            for start in range(0, len(data), size):
                cand = data[:start] + data[start + size :]
                if test(cand):
                    data = cand
                    n = max(n - 1, 2)
                    removed = True
                    break
            if not removed:
                if size == 1:
                    break
                n = min(len(data), n * 2)
        if len(data) == 1 and test(b""):
            data = b""
        return data

    def _towards_valid(self, ex: Exec) -> Exec:
        if len(ex.chunks) != 1:
            return ex
        data = ex.chunks[0]
        same = [v for v in self.valid if len(v) == len(data)]
        if not same:
            return ex
        target = min(same, key=lambda v: sum(a != b for a, b in zip(v, data, strict=True)))
        for i in range(len(data)):
            if data[i] == target[i]:
                continue
            cand = data[:i] + target[i : i + 1] + data[i + 1 :]
            if cand != target and self.test(replace(ex, chunks=(cand,))):
                data = cand
        return replace(ex, chunks=(data,))


def shrink(ex: Exec, check: Check, *, keep_bytes: bool, valid: Iterable[bytes] = (),
           replays: int = 150, seconds: float = 10.0) -> tuple[Exec, dict[str, object]]:
    """The smallest ``Exec`` found that still passes ``check``, and how it went."""
    budget = Budget(replays, seconds)
    shrinker = Shrinker(check, budget, keep_bytes=keep_bytes, valid=valid)
    out = shrinker.run(ex)
    info: dict[str, object] = {
        "from_bytes": len(ex.payload),
        "from_chunks": len(ex.chunks),
        "to_bytes": len(out.payload),
        "to_chunks": len(out.chunks),
        "replays": budget.used,
        "seconds": round(time.monotonic() - budget.started, 3),
        "complete": not shrinker.exhausted and budget.left,
    }
    return out, info
