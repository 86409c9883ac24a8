"""Structure-aware nslcd requests: PAM actions with mutated fields, framing and delivery.

Item ``i`` is a pure function of the seed and ``i``: items 0..n-1 are the given logins
(calibration), then a deterministic walk over the first login (each password mutation,
each framing defect, each stall once), then seeded havoc mixing a mutated field, a
framing defect and a delivery. Nothing depends on the daemon's replies.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from . import codec
from .fuzz_items import Exec

A = codec.Action
#: Action codes nslcd does not define (next to the PAM ones, and far away).
UNKNOWN_ACTIONS = (0x000D0006, 0x000D0000, 0x000E0001, 0x7FFFFFFF)
#: Length words that no daemon may allocate or wait for.
HUGE_LENGTHS = (1 << 21, 1 << 24, 0x7FFFFFFF)


@dataclass(frozen=True)
class Field:
    """One string of a request; ``length`` lies about its size when not None."""

    value: bytes
    length: int | None = None

    def encode(self) -> bytes:
        n = len(self.value) if self.length is None else self.length
        return codec.int32(n) + self.value


@dataclass(frozen=True)
class Spec:
    """A PAM request before encoding: header words, the five context strings, the tail."""

    action: int
    user: Field
    tail: tuple[Field | int, ...] = ()
    version: int = codec.VERSION
    service: bytes = b"pamconform"

    def encode(self) -> bytes:
        ctx = [self.user, Field(self.service), Field(b""), Field(b""), Field(b"")]
        out = [codec.header(self.action, self.version)] + [f.encode() for f in ctx]
        out += [t.encode() if isinstance(t, Field) else codec.int32(t) for t in self.tail]
        return b"".join(out)


def authc(user: bytes, password: bytes, *, action: int = A.PAM_AUTHC,
          version: int = codec.VERSION) -> Spec:
    return Spec(action, Field(user), (Field(password),), version)


def pwmod(user: bytes, old: bytes, new: bytes, asroot: bool = False) -> Spec:
    return Spec(A.PAM_PWMOD, Field(user), (int(asroot), Field(old), Field(new)))


def password_variants(pw: bytes, other: bytes | None) -> list[tuple[str, bytes]]:
    """Named mutations of the valid password (none equals it)."""
    out = [("wrong", pw[:-1] + bytes([pw[-1] ^ 1]) if pw else b"x"), ("empty", b""),
           ("truncated", pw[:-1]), ("half", pw[: (len(pw) + 1) // 2]), ("first", pw[:1]),
           ("extended", pw + b"x"), ("doubled", pw + pw), ("swapcase", pw.swapcase()),
           ("upper", pw.upper()), ("nul-end", pw + b"\0"), ("nul-junk", pw + b"\0junk"),
           ("nul-first", b"\0" + pw), ("space", pw + b" "), ("newline", pw + b"\n"),
           ("long", pw + b"A" * 4096)]
    if other is not None:
        out.append(("other-login", other))
    return [(name, v) for name, v in out if v != pw]


def splits(data: bytes, rng: random.Random) -> tuple[bytes, ...]:
    """``data`` cut at one to four random points."""
    if len(data) < 2:
        return (data,)
    points = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(1, 4))))
    return tuple(data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True))


def bytewise(data: bytes) -> tuple[bytes, ...]:
    return tuple(data[i:i + 1] for i in range(len(data)))


class Generator:
    """The item sequence for one seed and the given logins."""

    def __init__(self, seed: int, logins: Sequence[tuple[bytes, bytes]], *,
                 stall_s: float = 10.0, held: int = 3) -> None:
        if not logins:
            raise ValueError("the nslcd fuzzer needs at least one login")
        self.seed = seed
        self.logins = list(logins)
        self.stall_s = stall_s
        self.held = held
        self.walk = self._walk()

    def item(self, i: int) -> Exec:
        n = len(self.logins)
        if i < n:
            u, p = self.logins[i]
            return Exec((authc(u, p).encode(),), generator="valid")
        if i - n < len(self.walk):
            return self.walk[i - n]
        return self._havoc(random.Random(f"nslcd:{self.seed}:{i}"))

    # -- the walk --------------------------------------------------------------------------
    def _walk(self) -> list[Exec]:
        u, p = self.logins[0]
        other = self.logins[1][1] if len(self.logins) > 1 else None
        valid = authc(u, p).encode()
        ctx_end = len(valid) - 4 - len(p)  # where the password's length word starts
        out: list[Exec] = []

        def one(name: str, data: bytes, **kw: object) -> None:
            out.append(Exec((data,), generator=f"walk.{name}", **kw))  # type: ignore[arg-type]

        # Stalls first: waited out in the background while the rest runs.
        one("stall-mid-password", valid[:ctx_end + 4 + max(1, len(p) // 2)],
            stall_s=self.stall_s)
        one("stall-cut-password", authc(u, p).encode()[:ctx_end] + codec.int32(len(p) + 8) + p,
            stall_s=self.stall_s)
        one("stall-header", codec.header(A.PAM_AUTHC)[:6], stall_s=self.stall_s)
        out.append(Exec((valid,), held=self._held(u), generator="walk.served-while-stalled"))
        for name, pw in password_variants(p, other):
            one(f"pw-{name}", authc(u, pw).encode())
        for name, user in (("unknown", b"pamconform-nobody"), ("suffix", u + b"x"),
                           ("nul-user", u + b"\0x"), ("blank", b"")):
            one(f"user-{name}", authc(user, p).encode())
            one(f"user-{name}-empty-pw", authc(user, b"").encode())
        one("user-case", authc(u.swapcase(), p).encode())  # right password: not a finding
        for version in (1, 3, 0, -1):
            one(f"version-{version}", authc(u, p, version=version).encode(), shutdown=True)
        for action in UNKNOWN_ACTIONS:
            one(f"action-0x{action:08x}", authc(u, p, action=action).encode(), shutdown=True)
        one("action-config-get", codec.ConfigGetRequest().encode() + valid[8:], shutdown=True)
        head = valid[:ctx_end]
        one("len-pw-short", head + codec.int32(len(p) - 1) + p)
        one("len-pw-long-eof", head + codec.int32(len(p) + 1) + p, shutdown=True)
        one("len-pw-negative", head + codec.int32(-1) + p, shutdown=True)
        for n in HUGE_LENGTHS:
            one(f"len-pw-huge-{n:x}", head + codec.int32(n) + p, shutdown=True)
            one(f"len-user-huge-{n:x}", codec.header(A.PAM_AUTHC) + codec.int32(n) + u,
                shutdown=True)
        one("truncated-eof", valid[:-2], shutdown=True)
        out.append(Exec(bytewise(valid), generator="walk.split-bytewise"))
        out.append(Exec(splits(valid, random.Random(self.seed)), (0.05,) * 4,
                        generator="walk.split-paused"))
        for name, pw in password_variants(p, other)[:6]:
            one(f"pwmod-{name}", pwmod(u, pw, p).encode())
        one("pwmod-asroot-pw", pwmod(u, p, p, asroot=True).encode())
        one("authz", Spec(A.PAM_AUTHZ, Field(u)).encode())
        one("sess-o", Spec(A.PAM_SESS_O, Field(u)).encode())
        one("sess-c", Spec(A.PAM_SESS_C, Field(u), (Field(b"fake"),)).encode())
        return out

    def _held(self, user: bytes) -> tuple[bytes, ...]:
        """Partial requests of stalled clients: silent, inside the header, inside a string."""
        inside = codec.header(A.PAM_AUTHC) + codec.int32(len(user) + 4) + user
        return (b"", codec.header(A.PAM_AUTHC)[:5], inside)[: self.held]

    # -- havoc -----------------------------------------------------------------------------
    def _havoc(self, rng: random.Random) -> Exec:
        u, p = rng.choice(self.logins)
        others = [pw for _, pw in self.logins if pw != p]
        user, uname = self._user(rng, u)
        pw, pname = self._password(rng, p, others)
        kind = rng.random()
        if kind < 0.7:
            spec = authc(user, pw)
            aname = "authc"
        elif kind < 0.85:
            spec = pwmod(user, pw, p, asroot=rng.random() < 0.2)
            aname = "pwmod"
        else:
            spec = Spec(rng.choice((A.PAM_AUTHZ, A.PAM_SESS_O, A.PAM_SESS_C)), Field(user),
                        (Field(pw),))
            aname = "other"
        data, fname, framing_broken = self._framing(rng, spec)
        return self._deliver(rng, data, framing_broken,
                             f"havoc.{aname}.{uname}.{pname}.{fname}", user)

    def _user(self, rng: random.Random, u: bytes) -> tuple[bytes, str]:
        r = rng.random()
        if r < 0.6:
            return u, "user"
        choices: list[tuple[str, Callable[[], bytes]]] = [
            ("case", lambda: u.swapcase()), ("unknown", lambda: b"nobody%d" % rng.randint(0, 99)),
            ("blank", lambda: b""), ("nul", lambda: u + b"\0" + bytes([rng.randint(1, 255)])),
            ("suffix", lambda: u + bytes([rng.randint(0x21, 0x7e)])),
            ("long", lambda: u * rng.randint(50, 300))]
        name, make = rng.choice(choices)
        return make(), name

    def _password(self, rng: random.Random, p: bytes, others: list[bytes]) -> tuple[bytes, str]:
        r = rng.random()
        if r < 0.1:
            return p, "pw"
        if r < 0.5:
            name, value = rng.choice(password_variants(p, rng.choice(others) if others else None))
            return value, name
        data = bytearray(p)
        for _ in range(rng.randint(1, 3)):
            op = rng.randrange(5)
            at = rng.randrange(len(data) + 1)
            if op == 0 and data:
                del data[min(at, len(data) - 1)]
            elif op == 1:
                data.insert(at, rng.choice((0, 0x0A, 0x20, 0xFF, rng.randrange(256))))
            elif op == 2 and data:
                data[min(at, len(data) - 1)] ^= 1 << rng.randrange(8)
            elif op == 3:
                data = data[:at]
            else:
                data += bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        value = bytes(data)
        return (value, "mutated") if value != p else (value + b"!", "mutated")

    def _framing(self, rng: random.Random, spec: Spec) -> tuple[bytes, str, bool]:
        """The encoded request, maybe with one framing defect (and whether it has one)."""
        r = rng.random()
        if r < 0.6:
            return spec.encode(), "framed", False
        if r < 0.7:
            v = rng.choice((0, 1, 3, 0x00020000, -1))
            return Spec(spec.action, spec.user, spec.tail, v).encode(), "version", True
        if r < 0.8:
            a = rng.choice(UNKNOWN_ACTIONS)
            return Spec(a, spec.user, spec.tail).encode(), "action", True
        fields = [t for t in spec.tail if isinstance(t, Field)]
        target = rng.choice(["user", *range(len(fields))])
        delta = rng.choice((-2, -1, 1, 2, 64))
        lie = rng.choice((*HUGE_LENGTHS, -1, None))
        if target == "user":
            old = spec.user
            length = lie if lie is not None else max(0, len(old.value) + delta)
            spec = Spec(spec.action, Field(old.value, length), spec.tail, spec.version)
        else:
            f = fields[int(target)]
            length = lie if lie is not None else max(0, len(f.value) + delta)
            tail = tuple(Field(t.value, length) if t is f else t for t in spec.tail)
            spec = Spec(spec.action, spec.user, tail, spec.version)
        return spec.encode(), f"length-{target}", True

    def _deliver(self, rng: random.Random, data: bytes, broken: bool, name: str,
                 user: bytes) -> Exec:
        r = rng.random()
        shutdown = broken
        if r < 0.05:
            return Exec((data[: rng.randrange(len(data))],), stall_s=self.stall_s,
                        generator=f"{name}.stall")
        if r < 0.08:
            return Exec((data,), shutdown=shutdown, held=self._held(user),
                        generator=f"{name}.held")
        if r < 0.6:
            return Exec((data,), shutdown=shutdown, generator=name)
        if r < 0.7:
            return Exec(bytewise(data), shutdown=shutdown, generator=f"{name}.bytewise")
        chunks = splits(data, rng)
        pauses = tuple(rng.choice((0.0, 0.0, 0.002, 0.02)) for _ in chunks)
        return Exec(chunks, pauses, shutdown, generator=f"{name}.split")
