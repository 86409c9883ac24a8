"""What the fuzzer sends (an ``Exec``, or a ``Burst`` of them) and what it saves (a ``Finding``).

A finding is a JSON file that replays on its own::

    {"protocol": "redirector", "kind": "grant", "chunks_hex": ["616c6963650a610a"],
     "pauses": [], "shutdown": true, "setup_hex": [...], "concurrent_hex": [],
     "expected": "...", "observed": "...", "seed": 1, "iteration": 12, ...}
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

FORMAT = 1


@dataclass(frozen=True)
class Exec:
    """The bytes of one connection and how they are written.

    Each chunk is one write; ``pauses[i]`` is slept after chunk ``i`` (missing entries
    are 0). With ``shutdown`` the write side is closed after the last chunk, so the
    server sees EOF at once instead of waiting for its idle timeout. With ``stall_s``
    the attempt ends with a stall instead: no close, no half-close, and the client waits
    up to that long for the server to give up on it (its idle timeout).
    """

    chunks: tuple[bytes, ...]
    pauses: tuple[float, ...] = ()
    shutdown: bool = True
    generator: str = ""
    stall_s: float = 0.0

    @property
    def payload(self) -> bytes:
        """The exact bytes the server sees on this connection."""
        return b"".join(self.chunks)

    @property
    def stalls(self) -> bool:
        """Whether the attempt ends with a stall (waited out, not closed)."""
        return self.stall_s > 0

    def pause_after(self, i: int) -> float:
        return self.pauses[i] if i < len(self.pauses) else 0.0

    @property
    def complete(self) -> bool:
        """Whether the server has all it needs to answer: two newlines, or EOF."""
        return self.shutdown or self.payload.count(b"\n") >= 2

    def key(self) -> bytes:
        """A canonical byte string of what is sent (for digests and hashes)."""
        parts = [b"%d:%s" % (len(c), c) for c in self.chunks]
        parts.append(repr((tuple(round(p, 4) for p in self.pauses), self.shutdown)).encode())
        if self.stalls:  # only then, so the keys (and ids) of other attempts stay the same
            parts.append(b"stall:%.3f" % self.stall_s)
        return b"|".join(parts)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "chunks_hex": [c.hex() for c in self.chunks],
            "pauses": [round(p, 4) for p in self.pauses],
            "shutdown": self.shutdown,
        }
        if self.stalls:
            out["stall_s"] = round(self.stall_s, 3)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], generator: str = "") -> Exec:
        chunks = tuple(bytes.fromhex(c) for c in data["chunks_hex"])
        pauses = tuple(float(p) for p in data.get("pauses", []))
        if not all(0.0 <= p <= MAX_STALL_S for p in pauses) or sum(pauses) > MAX_STALL_S:
            raise ValueError(f"pauses must be 0..{MAX_STALL_S:g} seconds in all")
        stall_s = float(data.get("stall_s", 0.0))
        if not 0.0 <= stall_s <= MAX_STALL_S:  # also refuses nan
            raise ValueError(f"stall_s must be 0..{MAX_STALL_S:g} seconds")
        shutdown = bool(data.get("shutdown", True)) and not stall_s
        return cls(chunks, pauses, shutdown, generator, stall_s)


#: The longest stall a saved finding may ask for (and the longest its pauses may add up to).
MAX_STALL_S = 300.0


def single(payload: bytes, generator: str = "", *, shutdown: bool = True) -> Exec:
    """One write of ``payload``."""
    return Exec((payload,), (), shutdown, generator)


def stall(chunks: tuple[bytes, ...], wait: float, generator: str = "") -> Exec:
    """Write ``chunks`` back to back, then stall for up to ``wait`` seconds."""
    return Exec(chunks, (), False, generator, wait)


@dataclass(frozen=True)
class Burst:
    """Connections opened at once: all written, then all read (one thread, multiplexed)."""

    execs: tuple[Exec, ...]
    generator: str = "burst"

    def key(self) -> bytes:
        return b"burst[" + b"||".join(e.key() for e in self.execs) + b"]"


Item = Exec | Burst

#: Finding kind -> its fuzz case, in report order.
KINDS: dict[str, Kind] = {
    "grant": Kind(
        "fuzz.server.grants-only-exact-pair", "R-S2", "MUST",
        "Grants only the exact bytes of a known-valid request",
        "Under fuzzing, the server grants only connections whose bytes are exactly "
        "user\\npassword\\n of a known-valid pair; any other grant is a FAIL with a "
        "shrunk reproducer.", shrink=True, regression=True),
    "valid-denied": Kind(
        "fuzz.server.grants-valid-however-split", "R-S3", "MUST",
        "Grants a known-valid request however it is split or paused",
        "Every exactly valid request is granted, however its bytes are split "
        "into writes and paused.", shrink=True, regression=True),
    "original-grant": Kind(
        "fuzz.server.replies-well-formed", "R-S1", "SHOULD",
        "Never replies in a way the original module reads as a grant",
        "No reply is empty or non-numeric (the original module's atoi() reads "
        "those as a grant).", shrink=True, regression=True),
    "hang": Kind(
        "fuzz.server.answers-in-time", "R-S4", "MUST",
        "Answers every complete request within the timeout",
        "Every complete (or half-closed) request is answered within the timeout.",
        regression=True),
    "refused": Kind(
        "fuzz.server.keeps-accepting", "R-S5", "MUST",
        "Keeps accepting connections whatever it was sent",
        "The server keeps accepting connections whatever it was sent.", regression=True),
    # memory needs a long run and a pid: no regression case
    "memory": Kind(
        "fuzz.server.memory-bounded", "R-S4", "MUST",
        "Memory stays bounded under fuzzing (with --pid)",
        "The server's resident memory does not keep growing under fuzzing "
        "(sampled from /proc/PID/status when --pid is given)."),
    "trailing-grant": Kind(
        "fuzz.server.denies-trailing-bytes", "R-S2", "SHOULD",
        "Denies a valid request followed by more bytes in the same write",
        "A valid request followed by more bytes in the same write should be "
        "denied (bytes of later writes are not judged).", shrink=True),
}


@dataclass
class Finding(KindedFinding):
    """One oracle violation, with what reproduces it."""

    KINDS: ClassVar[Mapping[str, Kind]] = KINDS

    protocol: str
    kind: str
    exec: Exec
    expected: str
    observed: str
    seed: int
    iteration: int
    #: requests sent first, each on its own connection (the valid logins that preceded
    #: the finding in the run: stateful servers need them to reproduce it)
    setup: tuple[bytes, ...] = ()
    #: the other requests of its burst, when it only reproduces concurrently
    concurrent: tuple[Exec, ...] = ()
    #: users of the credentials the finding's bytes were made from
    users: tuple[str, ...] = ()
    #: the known-valid requests of the run (the oracle's exact pairs), so a finding
    #: replays on its own
    valid: tuple[bytes, ...] = ()
    shrink: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    found_after_s: float = 0.0

    @property
    def generator(self) -> str:
        return self.exec.generator

    def reproducer(self) -> str:
        after = " after the valid logins" if self.setup else ""
        return f"{shown_data(self.exec.payload, 160)}{after}"

    def short_hash(self) -> str:
        """A stable id of what the finding sends (not of when or how it was found)."""
        h = hashlib.sha256(self.kind.encode())
        for part in (*self.setup, b"#", self.exec.key(), b"#", *(e.key() for e in self.concurrent)):
            part = finding_files.public_bytes(part)
            h.update(len(part).to_bytes(4, "big") + part)
        return h.hexdigest()[:10]

    def file_name(self) -> str:
        return f"{self.kind}-{self.short_hash()}.json"

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"pamconform_finding": FORMAT, "protocol": self.protocol,
                               "kind": self.kind, "case": self.case_id, "rule": self.rule}
        out.update(self.exec.as_dict())
        out["setup_hex"] = [s.hex() for s in self.setup]
        out["concurrent_hex"] = [e.as_dict() for e in self.concurrent]
        out["valid_hex"] = [v.hex() for v in self.valid]
        out.update(
            expected=self.expected,
            observed=self.observed,
            seed=self.seed,
            iteration=self.iteration,
            generator=self.exec.generator,
            users=list(self.users),
            payload=repr(self.exec.payload[:200]),
            found_after_s=round(self.found_after_s, 3),
            shrink=self.shrink,
        )
        if self.extra:
            out["extra"] = self.extra
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        if not isinstance(data, dict) or "chunks_hex" not in data or "kind" not in data:
            raise ValueError("not a pamconform finding (needs kind and chunks_hex)")
        if data["kind"] not in KINDS:
            raise ValueError(f"unknown finding kind {data['kind']!r}")
        data = finding_files.from_file(data, current().logins)  # passwords from the logins
        ex = Exec.from_dict(data, str(data.get("generator", "")))
        return cls(
            protocol=str(data.get("protocol", "redirector")),
            kind=data["kind"],
            exec=ex,
            expected=str(data.get("expected", "")),
            observed=str(data.get("observed", "")),
            seed=int(data.get("seed", 0)),
            iteration=int(data.get("iteration", 0)),
            setup=tuple(bytes.fromhex(s) for s in data.get("setup_hex", [])),
            concurrent=tuple(Exec.from_dict(c) for c in data.get("concurrent_hex", [])),
            users=tuple(str(u) for u in data.get("users", [])),
            valid=tuple(bytes.fromhex(v) for v in data.get("valid_hex", [])),
            shrink=dict(data.get("shrink", {})),
            extra=dict(data.get("extra", {})),
            found_after_s=float(data.get("found_after_s", 0.0)),
        )

    def save(self, directory: Path) -> Path:
        """Write the finding (private, passwords as references to their logins)."""
        return finding_files.write(directory / self.file_name(), self.as_dict())

    @classmethod
    def load(cls, path: Path) -> Finding:
        return finding_files.load(path, cls.from_dict)
