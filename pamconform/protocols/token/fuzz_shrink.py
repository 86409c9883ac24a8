"""Shrinking a token finding: simpler transformations and deliveries to try, boldest first."""

from __future__ import annotations

from pamconform.protocols.token.fuzz_cases import Delivery, Transform, prefix_len, tail_from
from pamconform.protocols.token.minting import Token


def _int_steps(n: int, low: int) -> list[int]:
    """Smaller values to try for n, boldest first."""
    return sorted({c for c in (low, low + (n - low) // 2, n - 1) if low <= c < n})


def _shorter(data: bytes) -> list[bytes]:
    """Trimmed versions of data (at least one byte), shortest first."""
    out = [data[:1], data[: len(data) // 2], data[:-1]]
    if len(data) <= 16:
        out += [data[:i] + data[i + 1:] for i in range(len(data))]
    seen: list[bytes] = []
    for d in out:
        if d and len(d) < len(data) and d not in seen:
            seen.append(d)
    return seen


def smaller(t: Transform, token: Token) -> list[Transform]:
    """Candidate simplifications of t (judged against the token it was found with)."""
    n = len(token.raw)
    if t.op == "prefix":
        return [Transform.of("prefix", len=c) for c in _int_steps(prefix_len(t, token), 0)]
    if t.op == "tail":
        keep = n - tail_from(t, token)
        return [Transform.of("tail", drop=n - c) for c in _int_steps(keep, 1)]
    if t.op in ("append", "insert", "random"):
        extra = {"at": t.num("at")} if t.op == "insert" else {}
        return [Transform.of(t.op, hex=d.hex(), **extra) for d in _shorter(t.data())]
    if t.op == "case":
        nth = t.ints("nth")
        part = t.text("part", "secret")
        if not nth:
            return [Transform.of("case", part=part, nth=(k,)) for k in range(4)]
        if len(nth) > 1:
            return [Transform.of("case", part=part, nth=nth[:i] + nth[i + 1:])
                    for i in range(len(nth))]
        return []
    if t.op in ("pad", "fill"):
        return [Transform.of(t.op, len=c, byte=t.num("byte", 0x41))
                for c in _int_steps(t.num("len"), 1)]
    if t.op == "double" and t.data():
        return [Transform.of("double", hex="")]
    return []


def simpler_delivery(d: Delivery) -> list[Delivery]:
    out = []
    if d.splits:
        out.append(Delivery(shutdown=d.shutdown))
    if any(d.pauses_ms):
        out.append(Delivery(d.splits, (), d.shutdown))
    return out
