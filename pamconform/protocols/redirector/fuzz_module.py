"""The redirector module's fuzz model: generated server behaviours for ``fuzz module``.

Each scenario server in the lab gets a generated behaviour (:func:`generate`): mostly
replies (mutated, random, long), sometimes timing or disconnects. Only a reply of
exactly ``0`` or ``0\\n`` may grant; :data:`CHECKS` are the report's cases.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from pamconform.drivers.direct import DirectDriver
from pamconform.protocols.redirector.direct_steps import probe_service

WELL_FORMED_GRANTS = (b"0", b"0\n")
SEEDS = [b"0", b"1", b"0\n", b"1\n", b"00", b"PASS\n\0", b"-0", b"0 ", b"\x00"]


@dataclass
class Plan:
    """One generated server behaviour."""

    scenario: str
    args: dict[str, Any]
    reply: bytes | None  # the bytes the module will read, when the scenario replies

    @property
    def may_grant(self) -> bool:
        return self.reply in WELL_FORMED_GRANTS and self.scenario in ("malformed", "delay")

    def describe(self) -> str:
        extra = {k: v for k, v in self.args.items() if k != "reply"}
        shown = "" if self.reply is None else f" reply {self.reply[:40]!r}"
        more = f" ({len(self.reply)} bytes)" if self.reply and len(self.reply) > 40 else ""
        return f"{self.scenario}{shown}{more}{' ' + str(extra) if extra else ''}"


def _mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(5)
        if op == 0 and b:
            b[rng.randrange(len(b))] = rng.randrange(256)
        elif op == 1:
            b.insert(rng.randrange(len(b) + 1), rng.choice(b"0 \n\r\t\x00+-x1"))
        elif op == 2 and b:
            del b[rng.randrange(len(b))]
        elif op == 3:
            b += bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        else:
            b = b * rng.randint(2, 4)
    return bytes(b)


def generate(rng: random.Random) -> Plan:
    """A behaviour: mostly replies (mutated, random, long), sometimes timing or disconnects."""
    roll = rng.random()
    if roll < 0.03:
        name = rng.choice(["reset", "close-before-read", "close-after-request", "silence",
                           "accept-no-read", "silence"])
        return Plan(name, {}, None)
    if roll < 0.05:
        return Plan("two-replies", {"gap": rng.choice([0.0, 0.05])}, None)
    if roll < 0.10:
        reply = rng.choice([b"0", b"1", b"0\n"])
        return Plan("delay", {"seconds": rng.choice([0.05, 0.3]), "reply": reply.hex()}, reply)
    kind = rng.random()
    if kind < 0.55:
        reply = _mutate(rng, rng.choice(SEEDS))
    elif kind < 0.8:
        reply = bytes(rng.randrange(256) for _ in range(rng.randint(0, 24)))
    elif kind < 0.9:
        reply = bytes([rng.choice(b"0123456789 \n")]) * rng.choice([16, 64, 512, 4096, 8192])
    else:
        reply = rng.choice([b"", b"0", b"0\n", b"1", b"2", b"0\r\n", b"0\0", b"0\n\n"])
    return Plan("malformed", {"reply": reply.hex()}, reply)


#: (id, rule, title, requirement, finding kinds it covers)
CHECKS = [
    ("fuzz.module.grants-only-well-formed", "R-M1", "Only a well-formed grant grants",
     "Under generated server replies, PAM_SUCCESS comes only after exactly 0 or 0\\n.",
     ("fail-open",)),
    ("fuzz.module.bounded-time", "R-M2", "Every attempt returns in bounded time",
     "No generated server behaviour makes pam_authenticate outlive the hang bound.",
     ("hung",)),
    ("fuzz.module.host-survives", "R-M3", "The application survives every reply",
     "No generated server behaviour crashes the application or makes the module exit().",
     ("crashed", "exited")),
    ("fuzz.module.memcheck-clean", "R-M3", "Memcheck clean under generated replies",
     "Under valgrind, no generated reply causes a memory error (any kind but a leak).",
     ("memcheck",)),
]


class RedirectorModuleModel:
    """``MODULE``: what ``fuzz module`` needs from the protocol."""

    protocol = "redirector"
    checks = CHECKS
    #: the password each attempt types (the scenario servers do not check it)
    password = "alice-auth-pw"

    def generate(self, rng: random.Random) -> Plan:
        return generate(rng)

    def service(self, d: DirectDriver, socket: str, name: str) -> str:
        """Install the PAM service whose module talks to ``socket``; its name."""
        return probe_service(d, socket=socket, name=name)


MODULE = RedirectorModuleModel()
