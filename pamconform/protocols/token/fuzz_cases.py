"""What the token fuzzer sends: a *transformation* of a fresh token, and how it is written.

A transient token is single use, so a generated case (and a saved finding) is not a
byte string but a transformation of whatever fresh token is minted next, as JSON::

    {"op": "prefix", "len": 5}            first 5 bytes of the token
    {"op": "append", "hex": "00"}          the token, then a NUL
    {"op": "case", "part": "secret", "nth": [0]}   first letter of the secret case-flipped

plus a delivery ``{"splits": [10, 20], "pauses_ms": [5, 0], "shutdown": false}``.  A
case replays against any fresh token.  Positions in the secret count from its start
(0..31); a ``case`` flips the n-th letter (modulo the number of letters), so no
transformation can turn into the token itself.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from pamconform.protocols.token.minting import Token

SECRET_LEN = 32
#: Largest payload the fuzzer builds (1 MiB).
MAX_HUGE = 1 << 20
#: Longest pause between two writes (a conforming server may cut a client off after
#: its idle timeout; the reference's default is 5 s).
MAX_PAUSE_MS = 50
#: Every CONTROL_EVERY-th item (and item 0) is the exact fresh token: a positive control.
CONTROL_EVERY = 10

Param = int | str | tuple[int, ...]

FIELD_FORMS = ("plus1", "minus1", "other", "lead0", "max", "neg", "empty", "huge", "space",
               "plus", "hex")
OPS = ("exact", "empty", "prefix", "tail", "append", "insert", "case", "flip", "subst",
       "field", "double", "pad", "fill", "random")
#: Characters outside the base64 alphabet of the secret (URL-safe alphabet, padding...).
ALIEN = "-_=.~ !:"


@dataclass(frozen=True)
class Transform:
    """One transformation of a fresh token (see the module docstring)."""

    op: str
    args: tuple[tuple[str, Param], ...] = ()

    @classmethod
    def of(cls, op: str, **args: Param) -> Transform:
        if op not in OPS:
            raise ValueError(f"unknown token transformation {op!r}")
        return cls(op, tuple(sorted(args.items())))

    def get(self, key: str) -> Param | None:
        for k, v in self.args:
            if k == key:
                return v
        return None

    def num(self, key: str, default: int = 0) -> int:
        value = self.get(key)
        return value if isinstance(value, int) else default

    def text(self, key: str, default: str = "") -> str:
        value = self.get(key)
        return value if isinstance(value, str) else default

    def ints(self, key: str) -> tuple[int, ...]:
        value = self.get(key)
        return value if isinstance(value, tuple) else ()

    def data(self) -> bytes:
        return bytes.fromhex(self.text("hex"))

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"op": self.op}
        for k, v in self.args:
            out[k] = list(v) if isinstance(v, tuple) else v
        return out

    @classmethod
    def from_dict(cls, data: Any) -> Transform:
        if not isinstance(data, dict) or data.get("op") not in OPS:
            raise ValueError(f"not a token transformation: {data!r:.80}")
        args: dict[str, Param] = {}
        for k, v in data.items():
            if k == "op":
                continue
            if isinstance(v, list) and all(isinstance(x, int) for x in v):
                args[k] = tuple(v)
            elif isinstance(v, int | str) and not isinstance(v, bool):
                args[k] = v
            else:
                raise ValueError(f"transformation {data['op']}: bad value for {k}: {v!r:.40}")
        t = cls.of(str(data["op"]), **args)
        apply(t, SAMPLE)  # validates hex and the rest
        return t

    def describe(self) -> str:
        inner = ", ".join(f"{k}={list(v) if isinstance(v, tuple) else v}" for k, v in self.args)
        return f"{self.op}({inner})"


SAMPLE = Token(1000, 4242, "AbCdEfGh+/0123456789abcdefghijkl")
EXACT = Transform.of("exact")


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def prefix_len(t: Transform, token: Token) -> int:
    """The length a ``prefix`` keeps: ``len``, or all but ``drop``, or ``head`` + k."""
    n = len(token.raw)
    if t.get("drop") is not None:
        keep = n - t.num("drop")
    elif t.get("head") is not None:
        keep = len(token.head) + t.num("head")
    else:
        keep = t.num("len")
    return _clamp(keep, 0, n - 1)


def tail_from(t: Transform, token: Token) -> int:
    """Where a ``tail`` starts: after ``drop`` bytes, or ``head`` + k bytes."""
    n = len(token.raw)
    start = len(token.head) + t.num("head") if t.get("head") is not None else t.num("drop")
    return _clamp(start, 1, n)


def _field(value: int, form: str) -> str:
    text = str(value)
    return {
        "plus1": str(value + 1), "minus1": str(value - 1), "other": "1" if value == 0 else "0",
        "lead0": "0" + text, "max": "4294967295" if value != 4294967295 else "4294967294",
        "neg": "-" + text, "empty": "", "huge": "9" * 40, "space": " " + text,
        "plus": "+" + text, "hex": hex(value),
    }.get(form, str(value + 1))


def apply(t: Transform, token: Token) -> bytes:
    """The bytes ``t`` makes of ``token`` (never the token itself unless ``exact``)."""
    raw = token.raw
    n = len(raw)
    head = len(token.head)
    op = t.op
    if op == "exact":
        return raw
    if op == "empty":
        return b""
    if op == "prefix":
        return raw[: prefix_len(t, token)]
    if op == "tail":
        return raw[tail_from(t, token):]
    if op == "append":
        return raw + (t.data() or b"\0")
    if op == "insert":
        at = _clamp(t.num("at"), 0, n - 1)
        return raw[:at] + (t.data() or b"\0") + raw[at:]
    if op == "case":
        part = t.text("part", "secret")
        lo, hi = {"head": (0, head), "all": (0, n)}.get(part, (head, n))
        letters = [i for i in range(lo, hi) if chr(raw[i]).isalpha()]
        if not letters:  # cannot happen for "head" (TTK); for the secret, astronomically rare
            letters = [0]
        nth = t.ints("nth")
        chosen = {letters[k % len(letters)] for k in nth} if nth else set(letters)
        out = bytearray(raw)
        for i in chosen:
            out[i] = ord(chr(out[i]).swapcase())
        return bytes(out)
    if op == "flip":
        i = head + t.num("at") % SECRET_LEN
        out = bytearray(raw)
        out[i] ^= (t.num("xor") & 0xFF) or 1
        return bytes(out)
    if op == "subst":
        i = head + t.num("at") % SECRET_LEN
        to = (t.text("to") or "-").encode("latin-1")[:1]
        if to == raw[i:i + 1]:
            to = b"-"
        return raw[:i] + to + raw[i + 1:]
    if op == "field":
        uid, pid = str(token.uid), str(token.pid)
        if t.text("field", "uid") == "pid":
            pid = _field(token.pid, t.text("form"))
        else:
            uid = _field(token.uid, t.text("form"))
        return f"TTK{uid}:{pid}:{token.auth}".encode("latin-1")
    if op == "double":
        return raw + t.data() + raw
    if op == "pad":
        return raw + bytes([t.num("byte", 0x41) & 0xFF]) * _clamp(t.num("len"), 1, MAX_HUGE)
    if op == "fill":
        return bytes([t.num("byte", 0x41) & 0xFF]) * _clamp(t.num("len"), 1, MAX_HUGE)
    if op == "random":
        return t.data()
    raise ValueError(f"unknown token transformation {op!r}")


@dataclass(frozen=True)
class Delivery:
    """How the payload is written: one write per piece, pauses, half-close.

    Splits never fall after the token's length, so bytes beyond it arrive in the same
    write as its last byte (else a server that answers once it has the token's length
    would rightly ignore them).  An attempt shorter than the token is always
    half-closed: a conforming server would otherwise wait out its idle timeout.
    """

    splits: tuple[int, ...] = ()
    pauses_ms: tuple[int, ...] = ()
    shutdown: bool = False

    def plan(self, payload: bytes, token_len: int) -> tuple[list[bytes], list[float], bool]:
        """(chunks, pause after each chunk in seconds, half-close)."""
        limit = min(len(payload), token_len)
        cuts = sorted({c for c in self.splits if 0 < c < limit})
        bounds = [0, *cuts, len(payload)]
        chunks = [payload[a:b] for a, b in pairwise(bounds)]
        pauses = [_clamp(self.pauses_ms[k], 0, MAX_PAUSE_MS) / 1000
                  if k < len(self.pauses_ms) and k < len(chunks) - 1 else 0.0
                  for k in range(len(chunks))]
        return chunks, pauses, self.shutdown or len(payload) < token_len

    def as_dict(self) -> dict[str, Any]:
        return {"splits": list(self.splits), "pauses_ms": list(self.pauses_ms),
                "shutdown": self.shutdown}

    @classmethod
    def from_dict(cls, data: Any) -> Delivery:
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise ValueError(f"not a delivery: {data!r:.80}")
        try:
            return cls(tuple(int(x) for x in data.get("splits", [])),
                       tuple(int(x) for x in data.get("pauses_ms", [])),
                       bool(data.get("shutdown", False)))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"bad delivery: {exc}") from None


MODULE = Delivery()  # one write, no half-close: what pam_transient_token does
SHUT = Delivery(shutdown=True)


@dataclass(frozen=True)
class TokenCase:
    """One generated attempt: a transformation and its delivery."""

    transform: Transform
    delivery: Delivery = MODULE
    generator: str = field(default="", compare=False)

    @property
    def control(self) -> bool:
        return self.transform.op == "exact"

    def as_dict(self) -> dict[str, Any]:
        return {"transform": self.transform.as_dict(), "delivery": self.delivery.as_dict()}

    def key(self) -> bytes:
        """Canonical bytes of what is sent (for digests and hashes)."""
        return json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":")).encode()

    def describe(self) -> str:
        d = self.delivery
        how = []
        if d.splits:
            how.append(f"split at {list(d.splits)}" + (f", pauses {list(d.pauses_ms)} ms"
                                                        if any(d.pauses_ms) else ""))
        if d.shutdown:
            how.append("half-closed")
        return self.transform.describe() + (f" [{'; '.join(how)}]" if how else "")


def _t(op: str, **args: Param) -> Transform:
    return Transform.of(op, **args)


#: The walk: every class once, the likeliest defects first (same for every seed).
WALK: tuple[tuple[Transform, Delivery], ...] = (
    (_t("prefix", drop=1), SHUT),
    (_t("append", hex="00"), MODULE),
    (_t("case", part="secret", nth=(0,)), MODULE),
    (_t("append", hex="0a"), MODULE),
    (_t("empty"), SHUT),
    (_t("field", field="uid", form="plus1"), MODULE),
    (_t("field", field="pid", form="plus1"), MODULE),
    (_t("flip", at=31, xor=1), MODULE),
    (_t("subst", at=0, to="-"), MODULE),
    (_t("insert", at=20, hex="00"), MODULE),
    (_t("double", hex=""), MODULE),
    (_t("case", part="head", nth=()), MODULE),
    (_t("prefix", head=0), SHUT),
    (_t("prefix", len=3), SHUT),
    (_t("prefix", len=1), SHUT),
    (_t("prefix", head=16), Delivery((4, 12), (5, 5), True)),
    (_t("prefix", drop=1), Delivery((8, 30), (10, 0), True)),
    (_t("append", hex="0d0a"), MODULE),
    (_t("append", hex="00" + "41" * 8), SHUT),
    (_t("tail", head=0), SHUT),
    (_t("tail", drop=3), SHUT),
    (_t("field", field="uid", form="other"), MODULE),
    (_t("field", field="uid", form="lead0"), MODULE),
    (_t("field", field="pid", form="lead0"), MODULE),
    (_t("field", field="pid", form="minus1"), MODULE),
    (_t("case", part="all", nth=()), MODULE),
    (_t("append", hex="3d"), MODULE),
    (_t("flip", at=0, xor=0x80), MODULE),
    (_t("subst", at=31, to="_"), MODULE),
    (_t("insert", at=0, hex="20"), MODULE),
    (_t("double", hex="0a"), Delivery((10,), (5,), False)),
    (_t("pad", len=4096, byte=0x41), MODULE),
    (_t("pad", len=65536, byte=0), SHUT),
    (_t("fill", len=MAX_HUGE, byte=0x41), SHUT),
    (_t("random", hex="00ff7f80410a0d"), SHUT),
)

_INTERESTING = (b"\0", b"\n", b"\r", b" ", b"=", b"\xff", b"A", b"a", b"/", b"+", b"\t")
_HUGE_LENS = (16, 71, 72, 127, 128, 129, 256, 4096, 65536, MAX_HUGE)


class TokenGenerator:
    """The case sequence: item 0 and every CONTROL_EVERY-th are the exact token (a
    positive control), the rest the walk, then seeded havoc.  Item ``i`` depends only on
    the seed and ``i``, never on what the server answered."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def case(self, i: int) -> TokenCase:
        rng = random.Random(f"pamconform-token:{self.seed}:{i}")
        if i == 0:
            return TokenCase(EXACT, MODULE, "control.module")
        if i % CONTROL_EVERY == 0:
            return self._control(rng)
        w = (i - 1) - (i - 1) // CONTROL_EVERY
        if w < len(WALK):
            t, d = WALK[w]
            return TokenCase(t, d, f"walk.{t.op}")
        t = self._havoc(rng)
        return TokenCase(t, self._delivery(rng), f"havoc.{t.op}")

    def cases(self, count: int) -> list[TokenCase]:
        return [self.case(i) for i in range(count)]

    @staticmethod
    def _control(rng: random.Random) -> TokenCase:
        how = rng.choice(("module", "module", "shut", "split", "bytewise"))
        if how == "module":
            return TokenCase(EXACT, MODULE, "control.module")
        if how == "shut":
            return TokenCase(EXACT, SHUT, "control.half-closed")
        if how == "bytewise":
            n = rng.randint(3, 12)
            return TokenCase(EXACT, Delivery(tuple(range(1, n)), (1,) * (n - 1),
                                             rng.random() < 0.5), "control.bytewise")
        cuts = tuple(sorted(rng.sample(range(1, 48), rng.randint(1, 5))))
        pauses = tuple(rng.choice((0, 0, 2, 10, 30)) for _ in cuts)
        return TokenCase(EXACT, Delivery(cuts, pauses, rng.random() < 0.5), "control.split")

    @staticmethod
    def _bytes(rng: random.Random, most: int) -> bytes:
        return b"".join(rng.choice(_INTERESTING) if rng.random() < 0.6
                        else bytes([rng.randrange(256)]) for _ in range(rng.randint(1, most)))

    def _havoc(self, rng: random.Random) -> Transform:
        op = rng.choices(
            ("prefix", "tail", "append", "insert", "case", "flip", "subst", "field", "double",
             "pad", "fill", "random", "empty"),
            (14, 5, 12, 8, 10, 8, 6, 10, 4, 5, 3, 6, 1))[0]
        if op == "prefix":
            kind = rng.choice(("len", "drop", "head"))
            if kind == "len":
                return _t("prefix", len=rng.randint(0, 60))
            if kind == "drop":
                return _t("prefix", drop=rng.choice((1, 1, 2, 3, rng.randint(1, 40))))
            return _t("prefix", head=rng.randint(0, SECRET_LEN - 1))
        if op == "tail":
            if rng.random() < 0.5:
                return _t("tail", drop=rng.randint(1, 20))
            return _t("tail", head=rng.randint(0, SECRET_LEN - 1))
        if op == "append":
            return _t("append", hex=self._bytes(rng, 8).hex())
        if op == "insert":
            return _t("insert", at=rng.randint(0, 56), hex=self._bytes(rng, 3).hex())
        if op == "case":
            part = rng.choice(("secret", "secret", "head", "all"))
            nth: tuple[int, ...] = () if rng.random() < 0.2 else tuple(
                sorted(rng.sample(range(40), rng.randint(1, 3))))
            return _t("case", part=part, nth=nth)
        if op == "flip":
            return _t("flip", at=rng.randrange(SECRET_LEN),
                      xor=rng.choice((1, 2, 0x20, 0x80, rng.randint(1, 255))))
        if op == "subst":
            return _t("subst", at=rng.randrange(SECRET_LEN), to=rng.choice(ALIEN))
        if op == "field":
            return _t("field", field=rng.choice(("uid", "pid")), form=rng.choice(FIELD_FORMS))
        if op == "double":
            return _t("double", hex=rng.choice((b"", b"", b"\n", b"\0", b" ")).hex())
        if op in ("pad", "fill"):
            return _t(op, len=rng.choice(_HUGE_LENS), byte=ord(rng.choice(_INTERESTING)))
        if op == "random":
            return _t("random", hex=bytes(rng.randrange(256)
                                          for _ in range(rng.randint(1, 96))).hex())
        return _t("empty")

    @staticmethod
    def _delivery(rng: random.Random) -> Delivery:
        roll = rng.random()
        if roll < 0.45:
            return MODULE
        if roll < 0.75:
            return SHUT
        cuts = tuple(sorted(rng.sample(range(1, 56), rng.randint(1, 6))))
        pauses = tuple(rng.choice((0, 0, 0, 1, 5, 20)) for _ in cuts)
        return Delivery(cuts, pauses, rng.random() < 0.5)
