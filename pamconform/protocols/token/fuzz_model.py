"""The transient-token protocol's fuzz model: a fresh token per attempt, a variant of it.

Every attempt mints a token with the user's token command (bounded by its timeout),
applies the next generated transformation (``fuzz_cases``) and writes the result as its
delivery says (``fuzz_attempt``); the oracle:

* ``grant``: ``PASS\\n\\0`` for bytes that are not exactly the fresh token (T-S1);
* ``exact-refused``: the exact fresh token, however written, is not passed (the
  positive control: wrong polarity, or a broken server);
* ``hang``: no reply and no close within the timeout of a complete attempt (T-S2);
* ``unreachable``: the fresh token's socket does not take the connection.

Minting dominates the cost, so tokens are minted ``mint_ahead`` at a time in threads
while the main thread sends (``fuzz_minter``). A finding is a transformation, so
shrinking (trimming while it still reproduces, ``fuzz_shrink``) and replaying mint a
fresh token for every try.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

from pamconform.core.redaction import shown_data
from pamconform.fuzz import finding_files
from pamconform.fuzz.engine import FuzzConfig
from pamconform.fuzz.interface import (
    FuzzModel,
    Kind,
    KindedFinding,
    Replayed,
    StopFuzzing,
    Violation,
)
from pamconform.fuzz.shrink import Budget, descend
from pamconform.protocols.token.fuzz_attempt import Attempt, execute, judge
from pamconform.protocols.token.fuzz_cases import Delivery, TokenCase, TokenGenerator, Transform
from pamconform.protocols.token.fuzz_minter import Minter
from pamconform.protocols.token.fuzz_shrink import simpler_delivery, smaller
from pamconform.protocols.token.minting import SOCKET_DIR, MintFailed, Token

PROTOCOL = "transient-token"
FORMAT = 1

#: Finding kind -> its fuzz case, in report order; ``grant`` and ``exact-refused`` shrink
#: (for ``exact-refused`` only the delivery can get simpler; a hang costs a timeout a try).
KINDS: dict[str, Kind] = {
    "grant": Kind(
        "fuzz.token.passes-only-exact-token", "T-S1", "MUST",
        "Passes only the exact fresh token",
        "Under fuzzing (prefixes, tails, suffixes, case flips, byte flips, another "
        "uid or pid, NUL/newline inserted or appended, alphabet swaps, empty, huge, "
        "two tokens, random bytes; split, paused or half-closed), the server answers "
        "PASS\\n\\0 only to exactly the fresh token; any other PASS is a FAIL with a "
        "shrunk reproducer.", shrink=True),
    "exact-refused": Kind(
        "fuzz.token.passes-exact-token", "T-S1", "MUST",
        "Passes the exact fresh token however it is written",
        "Positive control: the exact fresh token, written in one piece as the "
        "module does, half-closed, or split with short pauses, is answered "
        "PASS\\n\\0 (a refusal means wrong polarity or a broken server).", shrink=True),
    "hang": Kind(
        "fuzz.token.answers-in-time", "T-S2", "MUST",
        "Answers every complete attempt within the timeout",
        "Every attempt at least as long as the token, or half-closed, gets a reply or "
        "a close within the timeout."),
    "unreachable": Kind(
        "fuzz.token.serves-fresh-token", "T-S1", "MUST",
        "Every fresh token's socket takes the connection",
        "Once the token command has printed a token, the socket it names "
        "accepts the attempt."),
}


@dataclass
class Target:
    """The token command to mint with, and where its servers listen."""

    command: str
    socket: Path | None = None
    socket_dir: Path = SOCKET_DIR
    command_timeout: float = 10.0
    ready_timeout: float = 2.0
    #: tokens minted in parallel threads ahead of use (0: one at a time)
    mint_ahead: int = field(default_factory=lambda: min(4, max(2, os.cpu_count() or 2)))

    def minter(self, ahead: int | None = None) -> Minter:
        return Minter(self.command, socket=self.socket, socket_dir=self.socket_dir,
                      command_timeout=self.command_timeout, ready_timeout=self.ready_timeout,
                      ahead=self.mint_ahead if ahead is None else ahead)


@dataclass
class TokenFinding(KindedFinding):
    """One oracle violation: a transformation (with its delivery) that reproduces it."""

    KINDS: ClassVar[Mapping[str, Kind]] = KINDS

    kind: str
    case: TokenCase
    expected: str
    observed: str
    seed: int
    iteration: int
    #: what was sent then (the token it was made of is dead)
    payload: bytes = b""
    token: str = ""
    found_after_s: float = 0.0
    shrink: dict[str, Any] = field(default_factory=dict)
    wire: list[dict[str, Any]] = field(default_factory=list)
    protocol: str = PROTOCOL
    #: the token it was found with (not saved: it gives the shrinker concrete lengths)
    token_seen: Token | None = field(default=None, compare=False, repr=False)

    @property
    def generator(self) -> str:
        return self.case.generator

    def reproducer(self) -> str:
        return f"{self.case.describe()} = {shown_data(self.payload, 120)}"

    def short_hash(self) -> str:
        h = hashlib.sha256(self.kind.encode() + b"#" + self.case.key())
        return h.hexdigest()[:10]

    def file_name(self) -> str:
        return f"{self.kind}-{self.short_hash()}.json"

    def as_dict(self) -> dict[str, Any]:
        return {
            "pamconform_finding": FORMAT, "protocol": self.protocol, "kind": self.kind,
            "case": self.case_id, "rule": self.rule, **self.case.as_dict(),
            "expected": self.expected, "observed": self.observed, "seed": self.seed,
            "iteration": self.iteration, "generator": self.case.generator,
            "payload": repr(self.payload[:200]), "payload_len": len(self.payload),
            "token": self.token, "found_after_s": round(self.found_after_s, 3),
            "shrink": self.shrink, "wire": self.wire,
        }

    @classmethod
    def from_dict(cls, data: Any) -> TokenFinding:
        if not isinstance(data, dict) or data.get("protocol") != PROTOCOL:
            raise ValueError("not a transient-token finding")
        if data.get("kind") not in KINDS or "transform" not in data:
            raise ValueError("not a transient-token finding (needs kind and transform)")
        case = TokenCase(Transform.from_dict(data["transform"]),
                         Delivery.from_dict(data.get("delivery")), str(data.get("generator", "")))
        return cls(data["kind"], case, str(data.get("expected", "")),
                   str(data.get("observed", "")), int(data.get("seed", 0)),
                   int(data.get("iteration", 0)), token=str(data.get("token", "")),
                   found_after_s=float(data.get("found_after_s", 0.0)),
                   shrink=dict(data.get("shrink", {})), wire=list(data.get("wire", [])))

    def save(self, directory: Path) -> Path:
        """Write the finding (private, tokens redacted: a replay mints a fresh one)."""
        return finding_files.write(directory / self.file_name(), self.as_dict())

    @classmethod
    def load(cls, path: Path) -> TokenFinding:
        return finding_files.load(path, cls.from_dict)


class Session:
    """One run: a minter, and the generated cases applied to its fresh tokens."""

    def __init__(self, cfg: FuzzConfig) -> None:
        self.cfg = cfg
        self.generator = TokenGenerator(cfg.seed)
        self.minter: Minter = cfg.target.minter()
        #: minting waits while shrinking (not fuzzing time)
        self.shrink_wait = 0.0

    def generate(self, i: int) -> TokenCase:
        return self.generator.case(i)

    def send(self, i: int, case: TokenCase) -> Sequence[tuple[TokenCase, Attempt]]:
        try:
            minted = self.minter.get()
        except MintFailed as exc:
            raise StopFuzzing("mint-failed", str(exc)) from None
        return [(case, execute(minted, case, self.cfg.timeout))]

    def ended(self, wait: bool) -> Sequence[tuple[int, TokenCase, Attempt]]:
        return ()

    def judge(self, case: TokenCase, att: Attempt) -> Violation | None:
        return judge(att, self.cfg.timeout)

    def gone(self, *_: Any) -> None:
        return None  # an unreachable socket is a finding of its own; fuzzing goes on

    def finding(self, i: int, item: TokenCase, case: TokenCase, att: Attempt, v: Violation,
                found_after_s: float) -> TokenFinding:
        return TokenFinding(v.kind, case, v.expected, v.observed, self.cfg.seed, i,
                            att.payload, att.token.text, found_after_s,
                            wire=att.log.as_list(), token_seen=att.token)

    def memory_finding(self, *_: Any) -> None:
        return None

    def example(self, case: TokenCase, att: Attempt) -> dict[str, Any]:
        return {"generator": case.generator, **case.as_dict(),
                "payload": repr(att.payload[:120])}

    def can_shrink(self, finding: TokenFinding) -> bool:
        return True

    def _check(self, kind: str, cand: TokenCase) -> Attempt | None:
        """Run the candidate on a fresh token: the attempt if it reproduces ``kind``."""
        try:
            minted = self.minter.get()
        except MintFailed:
            return None
        got = execute(minted, cand, self.cfg.timeout)
        v = judge(got, self.cfg.timeout)
        return got if v is not None and v.kind == kind else None

    def shrink(self, finding: TokenFinding, replays: int, seconds: float) -> None:
        """Greedy descent; the token the finding was made with gives concrete lengths."""
        waited = self.minter.wait_seconds
        try:
            self._shrink(finding, replays, seconds)
        finally:
            self.shrink_wait += self.minter.wait_seconds - waited

    def _shrink(self, finding: TokenFinding, replays: int, seconds: float) -> None:
        if self._check(finding.kind, finding.case) is None:
            finding.shrink = {"reproduced": False, "note": "did not reproduce with a "
                              "fresh token (timing-dependent?); saved as found"}
            return
        token = finding.token_seen
        assert token is not None

        def candidates(case: TokenCase) -> list[TokenCase]:
            out = [replace(case, transform=t) for t in smaller(case.transform, token)]
            return out + [replace(case, delivery=d) for d in simpler_delivery(case.delivery)]

        small, last, info = descend(finding.case, candidates,
                                    lambda c: self._check(finding.kind, c),
                                    Budget(replays, seconds), TokenCase.key)
        finding.shrink = {"reproduced": True, "from": finding.case.as_dict(), **info}
        if last is not None:
            v = judge(last, self.cfg.timeout)
            finding.case = replace(small, generator=finding.case.generator)
            finding.payload, finding.token = last.payload, last.token.text
            finding.observed = v.observed if v else last.reply.describe()
            finding.wire = last.log.as_list()

    def stats(self, fuzz_seconds: float) -> dict[str, Any]:
        m = self.minter
        wait = m.wait_seconds - self.shrink_wait
        return {"mints": m.mints,
                "mint_ms": round(1000 * m.mint_seconds / m.mints, 1) if m.mints else 0.0,
                "mint_ahead": m.ahead,
                "mint_wait_share": round(wait / fuzz_seconds, 3) if fuzz_seconds > 0 else 0.0}

    def close(self) -> None:
        """Stop minting; spend every token not used (its server exits)."""
        self.minter.close()


class TokenModel:
    """``MODEL``: the transient-token protocol for the fuzz engine."""

    protocol = PROTOCOL
    kinds = KINDS
    options = "pamconform.protocols.token.fuzz_cli"
    module = None
    regressions = None

    def open(self, cfg: FuzzConfig) -> Session:
        return Session(cfg)

    def load_finding(self, data: Any) -> TokenFinding:
        return TokenFinding.from_dict(data)

    def replay(self, finding: TokenFinding, cfg: FuzzConfig) -> Replayed:
        """Mint a fresh token, apply the finding's transformation, judge it as its kind
        (raises MintFailed when no token can be minted)."""
        with cfg.target.minter(ahead=0) as minter:
            att = execute(minter.get(), finding.case, cfg.timeout)
        v = judge(att, cfg.timeout)
        return Replayed(v is not None and v.kind == finding.kind,
                        f"{att.reply.describe()} for {shown_data(att.payload, 160)}", v, att,
                        about=f"{finding.case.describe()} of fresh token {att.token.head}<secret>",
                        log=att.log)

    def run_note(self, result: Any) -> str:
        s = result.stats
        return (f"seed {result.config.seed}: {result.execs} attempts, one fresh token each, "
                f"in {result.fuzz_seconds:.1f} s ({result.execs_per_s:.1f}/s; minting took "
                f"{s.get('mint_ms', 0.0):.0f} ms a token, "
                f"{s.get('mint_wait_share', 0.0):.0%} of the time spent waiting for one), "
                f"stopped by {result.stopped}")


MODEL: FuzzModel = TokenModel()


def config(command: str, *, socket: Path | None = None, socket_dir: Path = SOCKET_DIR,
           command_timeout: float = 10.0, ready_timeout: float = 2.0,
           mint_ahead: int | None = None, **engine: Any) -> FuzzConfig:
    """A FuzzConfig for this protocol (``engine``: the engine's knobs)."""
    target = Target(command, socket, socket_dir, command_timeout, ready_timeout)
    if mint_ahead is not None:
        target.mint_ahead = mint_ahead
    return FuzzConfig(PROTOCOL, target, **engine)
