"""What the nslcd fuzzer sends (an :class:`Exec`), its finding kinds, and what it saves.

A finding is a JSON file that replays on its own (passwords as references to the logins
given at replay time, see :mod:`pamconform.fuzz.finding_files`)::

    {"protocol": "nslcd", "kind": "grant", "chunks_hex": [...], "pauses": [],
     "shutdown": false, "stall_s": 0, "setup_hex": [...held clients...],
     "valid_hex": [...the run's logins...], "expected": "...", "observed": "...", ...}
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pamconform.core.redaction import current, shown_data
from pamconform.fuzz import finding_files
from pamconform.fuzz.interface import Kind, KindedFinding

from . import codec

PROTOCOL = "nslcd"
FORMAT = 1
#: The longest stall a saved finding may ask for.
MAX_STALL_S = 300.0
#: At most this many stalled clients held open around one attempt.
MAX_HELD = 16


@dataclass(frozen=True)
class Exec:
    """One connection's bytes, how they are written, and the clients stalled around it.

    Each chunk is one write; ``pauses[i]`` is slept after chunk ``i``. ``shutdown``
    half-closes after the last chunk (the daemon sees EOF at once). ``stall_s`` > 0 marks
    a request left incomplete on purpose: the client waits up to that long for the daemon
    to give up on it (its read timeout). ``held`` are partial requests sent first on
    connections of their own and kept open, stalled, until this attempt ends.
    """

    chunks: tuple[bytes, ...]
    pauses: tuple[float, ...] = ()
    shutdown: bool = False
    stall_s: float = 0.0
    held: tuple[bytes, ...] = ()
    generator: str = ""

    @property
    def payload(self) -> bytes:
        return b"".join(self.chunks)

    @property
    def stalls(self) -> bool:
        return self.stall_s > 0

    def pause_after(self, i: int) -> float:
        return self.pauses[i] if i < len(self.pauses) else 0.0

    def key(self) -> bytes:
        """A canonical byte string of what is sent (digests and file ids)."""
        parts = [b"%d:%s" % (len(c), c) for c in self.chunks]
        parts.append(repr((tuple(round(p, 4) for p in self.pauses), self.shutdown,
                           round(self.stall_s, 3))).encode())
        parts += [b"held:%s" % h for h in self.held]
        return b"|".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {"chunks_hex": [c.hex() for c in self.chunks],
                "pauses": [round(p, 4) for p in self.pauses],
                "shutdown": self.shutdown, "stall_s": round(self.stall_s, 3),
                "setup_hex": [h.hex() for h in self.held]}

    @classmethod
    def from_dict(cls, data: dict[str, Any], generator: str = "") -> Exec:
        chunks = tuple(bytes.fromhex(c) for c in data["chunks_hex"])
        pauses = tuple(float(p) for p in data.get("pauses", []))
        if not all(0.0 <= p <= MAX_STALL_S for p in pauses) or sum(pauses) > MAX_STALL_S:
            raise ValueError(f"pauses must be 0..{MAX_STALL_S:g} seconds in all")
        stall_s = float(data.get("stall_s", 0.0))
        if not 0.0 <= stall_s <= MAX_STALL_S:  # also refuses nan
            raise ValueError(f"stall_s must be 0..{MAX_STALL_S:g} seconds")
        held = tuple(bytes.fromhex(h) for h in data.get("setup_hex", []))
        if len(held) > MAX_HELD:
            raise ValueError(f"at most {MAX_HELD} held clients")
        return cls(chunks, pauses, bool(data.get("shutdown", False)), stall_s, held, generator)


#: Finding kind -> its fuzz case, in report order.
KINDS: dict[str, Kind] = {
    "grant": Kind(
        "fuzz.nslcd.grants-only-exact-credentials", "N-S1", "MUST",
        "Grants only the exact credentials of a given login",
        "Under fuzzing (PAM_AUTHC and PAM_PWMOD with wrong, empty, truncated, extended, "
        "case-changed and NUL-carrying passwords, unknown and blank users, wrong versions, "
        "unknown actions, lying length fields, split writes and stalls), SUCCESS is "
        "answered only to the exact user and password of a given login (the user name in "
        "any case; a blank user with an empty password from a root peer is the "
        "administrator path and not judged); any other SUCCESS is a FAIL.", shrink=True),
    "wrong-user": Kind(
        "fuzz.nslcd.grant-names-the-user", "N-S1", "MUST",
        "A grant names the user who asked",
        "A SUCCESS for a given login names that user (in any case), never another.",
        shrink=True),
    "valid-denied": Kind(
        "fuzz.nslcd.grants-valid-however-split", "N-S4", "MUST",
        "Grants a given login however its request is split, paused or surrounded by "
        "stalled clients",
        "The exact request pam_ldap sends for a given login is answered SUCCESS, however "
        "its bytes are split into writes and paused, and while other clients stall "
        "(positive control: a daemon that refuses everything does not pass)."),
    "hang": Kind(
        "fuzz.nslcd.answers-in-time", "N-S5", "MUST",
        "Answers or closes every complete request within the timeout",
        "Every whole (or half-closed) request gets a reply or a close within --timeout, "
        "also while other clients stall."),
    "idle": Kind(
        "fuzz.nslcd.drops-stalled-clients", "N-S5", "MUST",
        "Closes a client that stalls inside a request",
        "A client that stops sending before its request is whole is closed (or "
        "refused) within --idle-limit."),
    "gone": Kind(
        "fuzz.nslcd.keeps-serving", "N-S4", "MUST",
        "Keeps accepting connections whatever it was sent",
        "The daemon keeps accepting connections after any request (a crash ends the "
        "run)."),
    "nul-grant": Kind(
        "fuzz.nslcd.no-nul-truncation", "N-S1", "SHOULD",
        "Does not stop a user name or password at a NUL byte",
        "A password or user name carrying a NUL is not granted as if it ended there "
        "(no gain: pam_ldap cannot send a NUL, and only the exact password before it "
        "passes).", shrink=True),
    "cut-grant": Kind(
        "fuzz.nslcd.cut-string-not-complete", "N-S4", "SHOULD",
        "Does not take a string cut short as complete",
        "A request whose last string never arrives whole (its length field promises "
        "more) is not granted as if the bytes so far were the whole string (no gain: "
        "they are the client's own exact password)."),
}


def encode_login(user: bytes, password: bytes) -> bytes:
    """A login as saved in ``valid_hex`` (two length-prefixed strings)."""
    return codec.string(user) + codec.string(password)


def decode_login(data: bytes) -> tuple[bytes, bytes]:
    r = codec.Reader(data, max_string=1 << 16)
    return r.string(), r.string()


@dataclass
class Finding(KindedFinding):
    """One oracle violation, with what reproduces it."""

    KINDS: ClassVar[Mapping[str, Kind]] = KINDS

    kind: str
    exec: Exec
    expected: str
    observed: str
    seed: int
    iteration: int
    #: the logins of the run (the oracle's exact credentials), so it replays on its own
    valid: tuple[tuple[bytes, bytes], ...] = ()
    found_after_s: float = 0.0
    shrink: dict[str, Any] = field(default_factory=dict)
    protocol: str = PROTOCOL

    @property
    def generator(self) -> str:
        return self.exec.generator

    def reproducer(self) -> str:
        ex = self.exec
        how = []
        if len(ex.chunks) > 1:
            how.append(f"in {len(ex.chunks)} writes")
        if ex.stalls:
            how.append("then a stall")
        elif ex.shutdown:
            how.append("then a half-close")
        if ex.held:
            how.append(f"while {len(ex.held)} clients stall")
        tail = f" ({', '.join(how)})" if how else ""
        return f"{shown_data(ex.payload, 192)}{tail}"

    def short_hash(self) -> str:
        """A stable id of what the finding sends (never an oracle for the password)."""
        h = hashlib.sha256(self.kind.encode())
        part = finding_files.public_bytes(self.exec.key())
        h.update(len(part).to_bytes(4, "big") + part)
        return h.hexdigest()[:10]

    def file_name(self) -> str:
        return f"{self.kind}-{self.short_hash()}.json"

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"pamconform_finding": FORMAT, "protocol": self.protocol,
                               "kind": self.kind, "case": self.case_id, "rule": self.rule}
        out.update(self.exec.as_dict())
        out["valid_hex"] = [encode_login(u, p).hex() for u, p in self.valid]
        out.update(expected=self.expected, observed=self.observed, seed=self.seed,
                   iteration=self.iteration, generator=self.exec.generator,
                   users=[u.decode("utf-8", "replace") for u, _ in self.valid],
                   payload=repr(self.exec.payload[:200]),
                   found_after_s=round(self.found_after_s, 3), shrink=self.shrink)
        return out

    @classmethod
    def from_dict(cls, data: Any) -> Finding:
        if not isinstance(data, dict) or data.get("protocol") != PROTOCOL:
            raise ValueError(f"not an {PROTOCOL} finding")
        if data.get("kind") not in KINDS or "chunks_hex" not in data:
            raise ValueError(f"not an {PROTOCOL} finding (needs kind and chunks_hex)")
        data = finding_files.from_file(data, current().logins)  # passwords from the logins
        ex = Exec.from_dict(data, str(data.get("generator", "")))
        valid = tuple(decode_login(bytes.fromhex(v)) for v in data.get("valid_hex", []))
        return cls(data["kind"], ex, str(data.get("expected", "")),
                   str(data.get("observed", "")), int(data.get("seed", 0)),
                   int(data.get("iteration", 0)), valid,
                   float(data.get("found_after_s", 0.0)), dict(data.get("shrink", {})))

    def save(self, directory: Path) -> Path:
        """Write the finding (private, passwords as references to their logins)."""
        return finding_files.write(directory / self.file_name(), self.as_dict())

    @classmethod
    def load(cls, path: Path) -> Finding:
        return finding_files.load(path, cls.from_dict)
