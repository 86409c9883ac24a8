"""Structure-aware generators and plain corpus mutations, as a pure function of (seed, i).

The schedule:

* items ``0 .. n-1`` are the known-valid requests (calibration: they must be granted);
* then a deterministic *walk* over the first credential (three stalls first: silent,
  mid-user, mid-password; then AFL's deterministic stage, made structure-aware: each
  password byte flipped, deleted, a NUL inserted at each position, suffixes on the
  user name, each framing variant once) is interleaved with
  *havoc* items drawn from a ``random.Random`` seeded by (seed, i);
* once the walk is done, havoc only.

Havoc families: valid framing around mutated fields (``pw.*``, ``user.*``, ``both.*``,
``cross``), mutated framing around valid fields (``frame.*``), splits and pauses
(``split.*``), concurrency bursts (``burst``), plain mutations of the corpus
(``corpus``) and, rarely, attempts that end with a stall instead of a close
(``stall.*``: silent, mid-user or mid-password, waited out for ``stall_s`` seconds).
Nothing depends on the server's replies, so a seed always yields the same sequence.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from typing import ClassVar

from pamconform.core import lookalikes
from pamconform.protocols.redirector.client import request
from pamconform.protocols.redirector.fuzz_items import Burst, Exec, Item, single, stall

Pair = tuple[bytes, bytes]

#: Bytes that break parsers: NUL, CR, LF, high bytes, whitespace, separators, UTF-8.
INTERESTING = (b"\0", b"\r", b"\n", b"\xff", b"\x80", b" ", b"\t", b"\x7f", b"\x1b",
               b"\xc3\xa9", b"\v", b"\f", b":", b"\\", b"%s", b"\x00\x00")
WHITESPACE = (b" ", b"\t", b"  ", b"\v", b"\f", b"\r", b" \t")
HUGE = (4097, 65536, 1 << 20)


def _flip_case(b: int) -> int:
    if 0x41 <= b <= 0x5A or 0x61 <= b <= 0x7A:
        return b ^ 0x20
    return b ^ 0x01


# --------------------------------------------------------------------------- field ops


def _op_truncate(rng: random.Random, f: bytes) -> bytes:
    if len(f) < 2:
        return b""
    return f[: rng.randint(1, len(f) - 1)] if rng.random() < 0.9 else b""


def _op_truncate_front(rng: random.Random, f: bytes) -> bytes:
    return f[rng.randint(1, len(f)) :] if f else b"x"


def _op_extend(rng: random.Random, f: bytes) -> bytes:
    choice = rng.randrange(4)
    if choice == 0:
        return f + (f[-1:] or b"x")
    if choice == 1:
        return f + bytes(rng.choice(b"abcxyz0129") for _ in range(rng.randint(1, 4)))
    if choice == 2:
        return f + rng.choice(INTERESTING)
    return f + f


def _op_case(rng: random.Random, f: bytes) -> bytes:
    if not f:
        return b"X"
    if rng.random() < 0.2:
        return f.swapcase() if f.swapcase() != f else f.upper() + b"X"
    out = bytearray(f)
    for _ in range(rng.choice((1, 1, 1, 2))):
        pos = rng.randrange(len(out))
        out[pos] = _flip_case(out[pos])
    return bytes(out)


def _op_insert(rng: random.Random, f: bytes) -> bytes:
    pos = len(f) if rng.random() < 0.4 else rng.randint(0, len(f))
    return f[:pos] + rng.choice(INTERESTING) + f[pos:]


def _op_substitute(rng: random.Random, f: bytes) -> bytes:
    if not f:
        return bytes([rng.randrange(256)])
    out = bytearray(f)
    pos = rng.randrange(len(out))
    if rng.random() < 0.5:
        out[pos] = (out[pos] + rng.choice((1, -1))) % 256
    else:
        out[pos] = rng.randrange(256)
    return bytes(out)


def _op_delete(rng: random.Random, f: bytes) -> bytes:
    if not f:
        return f
    pos = rng.randrange(len(f))
    return f[:pos] + f[pos + 1 :]


def _op_pad(rng: random.Random, f: bytes) -> bytes:
    ws = rng.choice(WHITESPACE)
    side = rng.randrange(3)
    return (ws + f) if side == 0 else (f + ws) if side == 1 else (ws + f + ws)


def _op_bitflip(rng: random.Random, f: bytes) -> bytes:
    if not f:
        return b"\x01"
    out = bytearray(f)
    pos = rng.randrange(len(out))
    out[pos] ^= 1 << rng.randrange(8)
    return bytes(out)


def _op_empty(rng: random.Random, f: bytes) -> bytes:
    return b""


def _op_lookalike(rng: random.Random, f: bytes) -> bytes:
    """A look-alike of the field: a Unicode form, full-width, homoglyphs, a Unicode space."""
    found = lookalikes.variants(f)
    return rng.choice(found)[1] if found else f + b"\xc2\xa0"


FIELD_OPS: dict[str, Callable[[random.Random, bytes], bytes]] = {
    "truncate": _op_truncate,
    "truncate-front": _op_truncate_front,
    "extend": _op_extend,
    "case": _op_case,
    "insert": _op_insert,
    "substitute": _op_substitute,
    "delete": _op_delete,
    "pad": _op_pad,
    "bitflip": _op_bitflip,
    "empty": _op_empty,
    "lookalike": _op_lookalike,
}
_OP_NAMES = tuple(FIELD_OPS)


# --------------------------------------------------------------------------- framing


def framing_variants(user: bytes, password: bytes) -> dict[str, tuple[bytes, bool]]:
    """Mutated framing around valid fields: name -> (payload, half-close after)."""
    req = request(user, password)
    return {
        "no-final-newline": (user + b"\n" + password, True),
        "no-newlines": (user + password, True),
        "user-only": (user + b"\n", True),
        "extra-newline-end": (req + b"\n", True),
        "newline-first": (b"\n" + req, True),
        "double-newline-mid": (user + b"\n\n" + password + b"\n", True),
        "crlf": (user + b"\r\n" + password + b"\r\n", True),
        "crlf-last": (user + b"\n" + password + b"\r\n", True),
        "cr-only": (user + b"\r" + password + b"\r", True),
        "lfcr": (user + b"\n\r" + password + b"\n\r", True),
        "trailing-x": (req + b"x", True),
        "trailing-line": (req + b"extra\n", True),
        "trailing-request": (req + req, True),
        "trailing-nul": (req + b"\0", True),
        "trailing-no-shutdown": (req + b"x", False),
        "empty-user": (b"\n" + password + b"\n", True),
        "empty-password": (user + b"\n\n", True),
        "empty-both": (b"\n\n", True),
        "empty": (b"", True),
        "nul-for-newline": (user + b"\0" + password + b"\0", True),
        "space-separated": (user + b" " + password + b"\n", True),
        "tab-separated": (user + b"\t" + password + b"\n", True),
        "colon-separated": (user + b":" + password + b"\n", True),
    }


def huge_variant(rng: random.Random, user: bytes, password: bytes) -> tuple[str, bytes]:
    n = rng.choice(HUGE)
    fill = bytes([rng.choice(b"A\xff\0 ")]) * n
    which = rng.randrange(4)
    if which == 0:
        return f"huge-user-{n}", fill + b"\n" + password + b"\n"
    if which == 1:
        return f"huge-password-{n}", user + b"\n" + password + fill + b"\n"
    if which == 2:
        return f"huge-trailing-{n}", request(user, password) + fill
    return f"huge-no-newline-{n}", fill


# --------------------------------------------------------------------------- corpus ops


def mutate_corpus(rng: random.Random, data: bytes, corpus: list[bytes]) -> bytes:
    """1..4 plain byte-level mutations (AFL havoc style) of a corpus entry."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(8)
        n = len(out)
        if op == 0 and n:
            out[rng.randrange(n)] ^= 1 << rng.randrange(8)
        elif op == 1 and n:
            out[rng.randrange(n)] = rng.randrange(256)
        elif op == 2:
            pos = rng.randint(0, n)
            out[pos:pos] = rng.choice(INTERESTING)
        elif op == 3 and n:
            a = rng.randrange(n)
            del out[a : a + rng.randint(1, max(1, min(8, n - a)))]
        elif op == 4 and n:
            a = rng.randrange(n)
            b = rng.randint(a, min(n, a + 16))
            pos = rng.randint(0, n)
            out[pos:pos] = out[a:b]
        elif op == 5 and corpus:
            other = rng.choice(corpus)
            if other:
                a = rng.randrange(len(other))
                pos = rng.randint(0, n)
                out[pos:] = other[a:]
        elif op == 6 and n > 1:
            del out[rng.randint(1, n - 1) :]
        else:
            pos = rng.randint(0, n)
            out[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
    return bytes(out[: 1 << 20])


# --------------------------------------------------------------------------- generator


class Generator:
    """Item ``i`` of the sequence for a seed; pure, so the sequence is reproducible."""

    #: havoc family -> weight
    WEIGHTS: ClassVar[dict[str, int]] = {
        "pw": 26,
        "user": 10,
        "both": 4,
        "cross": 4,
        "frame": 16,
        "huge": 2,
        "split": 14,
        "burst": 6,
        "corpus": 10,
        # last, so the families drawn for the other weights stay as they were
        "stall": 1,
    }

    def __init__(self, seed: int, credentials: list[Pair], corpus: list[bytes] | None = None,
                 *, stall_s: float = 10.0):
        if not credentials:
            raise ValueError("the generator needs at least one known-valid pair")
        self.seed = seed
        self.stall_s = stall_s
        self.credentials = list(credentials)
        self.valid = [request(u, p) for u, p in self.credentials]
        self.corpus = list(self.valid) + [c for c in (corpus or []) if c]
        self.walk = self._walk()
        self._families = list(self.WEIGHTS)
        self._cum: list[int] = []
        total = 0
        for name in self._families:
            total += self.WEIGHTS[name]
            self._cum.append(total)

    # -- the schedule ---------------------------------------------------------------

    def item(self, i: int) -> Item:
        n = len(self.valid)
        if i < n:
            return single(self.valid[i], "valid")
        j = i - n
        if j % 2 == 1 and j // 2 < len(self.walk):
            return self.walk[j // 2]
        rng = random.Random(self.seed * 0x9E3779B97F4A7C15 + i)
        return self.havoc(rng)

    def items(self, count: int) -> list[Item]:
        return [self.item(i) for i in range(count)]

    # -- the deterministic walk -----------------------------------------------------

    def _walk(self) -> list[Item]:
        user, pw = self.credentials[0]
        families: list[list[Item]] = [
            [single(request(user, pw[:i] + bytes([_flip_case(pw[i])]) + pw[i + 1 :]),
                    f"walk.pw-flip-{i}") for i in range(len(pw))],
            [single(request(user, pw[:i] + b"\0" + pw[i:]), f"walk.pw-nul-at-{i}")
             for i in range(len(pw), -1, -1)],
            [*(single(request(user + suffix, pw), f"walk.user-suffix-{suffix.hex()}")
               for suffix in (b"\0", b" ", b"\t", b"\r", b"\xff", b"\0\0")),
             *(single(request(user[:i] + bytes([_flip_case(user[i])]) + user[i + 1 :], pw),
                      f"walk.user-flip-{i}") for i in range(len(user)))],
            [single(request(user, pw[:i] + pw[i + 1 :]), f"walk.pw-delete-{i}")
             for i in range(len(pw) - 1, -1, -1)],
            [single(request(user, pw + suffix), f"walk.pw-suffix-{suffix.hex()}")
             for suffix in (b" ", b"\t", b"\r", b"\xff", b"\x80", b"x", b"\0\0")],
            [single(payload, f"walk.frame-{name}", shutdown=shut)
             for name, (payload, shut) in framing_variants(user, pw).items()],
            # passwords that look (or normalise to) the same (R-S2)
            [single(request(user, v), f"walk.pw-lookalike-{name}")
             for name, v in lookalikes.variants(pw)],
            # a client that stalls mid-request must not hold up the next one
            [Burst((single(user[:2], "stall", shutdown=False), single(request(user, pw), "valid")),
                   "walk.stall-then-valid")],
        ]
        # first, as each is waited out in the background for the server's idle timeout:
        # a stalled client must not be granted when the server gives up on it
        out: list[Item] = [
            self._stalled(request(user, pw)[:cut], "walk.")
            for cut in (0, max(1, len(user) // 2), len(user) + 1 + max(1, len(pw) // 2))]
        for k in range(max(len(f) for f in families)):
            out.extend(f[k] for f in families if k < len(f))
        return out

    # -- havoc ----------------------------------------------------------------------

    def _family(self, rng: random.Random) -> str:
        x = rng.randrange(self._cum[-1])
        for name, cum in zip(self._families, self._cum, strict=True):
            if x < cum:
                return name
        return self._families[-1]

    def havoc(self, rng: random.Random) -> Item:
        family = self._family(rng)
        if family == "burst":
            return self._burst(rng)
        if family == "split":
            return self._split(rng)
        if family == "stall":
            return self._stall(rng)
        return self._single(rng, family)

    def _single(self, rng: random.Random, family: str) -> Exec:
        user, pw = rng.choice(self.credentials)
        if family in ("pw", "user", "both"):
            op = rng.choice(_OP_NAMES)
            if family in ("pw", "both"):
                pw = FIELD_OPS[op](rng, pw)
            if family in ("user", "both"):
                user = FIELD_OPS[op if family == "user" else rng.choice(_OP_NAMES)](rng, user)
            return single(request(user, pw), f"{family}.{op}")
        if family == "cross":
            others = [c for c in self.credentials if c[0] != user]
            if others:
                other_user, _ = rng.choice(others)
                return single(request(other_user, pw), "cross.other-users-password")
            stranger = rng.choice((b"root", b"admin", b"nobody", b"x", user.upper() + b"2"))
            return single(request(stranger, pw), "cross.unknown-user")
        if family == "frame":
            variants = framing_variants(user, pw)
            name = rng.choice(sorted(variants))
            payload, shut = variants[name]
            return single(payload, f"frame.{name}", shutdown=shut)
        if family == "huge":
            name, payload = huge_variant(rng, user, pw)
            return single(payload, f"frame.{name}")
        data = mutate_corpus(rng, rng.choice(self.corpus), self.corpus)
        return single(data, "corpus")

    def _base(self, rng: random.Random) -> tuple[bytes, str]:
        """A request to split: half of the time exactly valid, else mutated."""
        if rng.random() < 0.5:
            return rng.choice(self.valid), "valid"
        ex = self._single(rng, rng.choice(("pw", "user", "frame", "corpus")))
        return ex.payload, ex.generator

    def _pauses(self, rng: random.Random, n: int) -> tuple[float, ...]:
        if n < 2:
            return ()
        pauses = [0.0] * (n - 1)
        mode = rng.random()
        if mode < 0.6:
            return tuple(pauses)
        for _ in range(rng.choice((1, 1, 2))):
            pauses[rng.randrange(n - 1)] = (rng.uniform(0.0005, 0.003) if mode < 0.93
                                            else rng.uniform(0.01, 0.03))
        return tuple(pauses)

    def _split(self, rng: random.Random) -> Exec:
        payload, what = self._base(rng)
        style = rng.choice(("bytes", "random", "lines"))
        if not payload:
            return single(payload, f"split.{style}({what})")
        if style == "bytes":
            chunks = [payload[k : k + 1] for k in range(min(len(payload), 512))]
            if len(payload) > 512:
                chunks.append(payload[512:])
        elif style == "lines":
            chunks = [line for line in payload.split(b"\n")]
            chunks = [c + b"\n" for c in chunks[:-1]] + ([chunks[-1]] if chunks[-1] else [])
        else:
            cuts = sorted({rng.randint(1, max(1, len(payload) - 1))
                           for _ in range(rng.randint(1, 4))})
            bounds = [0, *cuts, len(payload)]
            chunks = [payload[a:b] for a, b in itertools.pairwise(bounds) if a < b]
        shutdown = not (payload in self.valid and rng.random() < 0.2)
        return Exec(tuple(chunks), self._pauses(rng, len(chunks)), shutdown,
                    f"split.{style}({what})")

    def _stalled(self, sent: bytes, prefix: str = "", chunks: tuple[bytes, ...] = ()) -> Exec:
        """An attempt that sends ``sent`` (maybe in ``chunks``), then stalls."""
        where = ("silent" if not sent else "mid-user" if b"\n" not in sent
                 else "mid-password")
        return stall(chunks or (sent,), self.stall_s, f"{prefix}stall.{where}")

    def _stall(self, rng: random.Random) -> Exec:
        """A request (valid or mutated) cut before its second newline, then a stall."""
        payload, _ = self._base(rng)
        first = payload.find(b"\n")
        second = payload.find(b"\n", first + 1) if first >= 0 else -1
        end = second if second >= 0 else len(payload)
        sent = payload[: rng.randint(0, end)]
        if len(sent) > 1 and rng.random() < 0.5:
            cut = rng.randint(1, len(sent) - 1)
            return self._stalled(sent, chunks=(sent[:cut], sent[cut:]))
        return self._stalled(sent)

    def _burst(self, rng: random.Random) -> Burst:
        members: list[Exec] = []
        if rng.random() < 0.2:
            user, _ = rng.choice(self.credentials)
            members.append(single(user[: rng.randint(0, len(user))], "stall", shutdown=False))
        for _ in range(rng.randint(3, 16)):
            if rng.random() < 0.4:
                members.append(single(rng.choice(self.valid), "valid"))
            else:
                family = rng.choice(("pw", "pw", "user", "cross", "frame", "corpus"))
                members.append(self._single(rng, family))
        return Burst(tuple(members), f"burst-{len(members)}")
