"""Fuzzing a transient-token server: a fresh token per attempt, a generated variant of it.

Every execution mints a token with the user's token command (bounded by its timeout),
applies the next generated transformation (``token_model``) and writes the result as
its delivery says, then judges the reply:

* ``grant``: ``PASS\\n\\0`` for bytes that are not exactly the fresh token (T-S1);
* ``exact-refused``: the exact fresh token, however written, is not passed (the
  positive control: wrong polarity, or a broken server);
* ``hang``: no reply and no close within the timeout of a complete attempt (T-S2);
* ``unreachable``: the fresh token's socket does not take the connection.

Minting dominates the cost, so tokens are minted ``mint_ahead`` at a time in threads
while the main thread sends.  A finding is a transformation, so shrinking (trimming
while it still reproduces) and replaying mint a fresh token for every try.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pamconform.core.registry import Case
from pamconform.core.runner import CaseResult, TargetResult
from pamconform.core.verdicts import Severity, Verdict
from pamconform.core.wirelog import WireLog
from pamconform.fuzz import finding_files
from pamconform.fuzz.token_model import (
    Delivery,
    TokenCase,
    TokenGenerator,
    Transform,
    apply,
    prefix_len,
    tail_from,
)
from pamconform.protocols.token.client import ConnectFailed, Connection, TokenReply
from pamconform.protocols.token.minting import (
    SOCKET_DIR,
    Minted,
    MintFailed,
    Token,
    TokenSource,
    spend,
)

PROTOCOL = "transient-token"
FORMAT = 1
#: Once 6 reply bytes are in and the server keeps the connection open, stop waiting.
SETTLE_S = 0.1
#: A minted token older than this is spent and replaced (its server may expire).
MAX_TOKEN_AGE = 5.0
EXAMPLES_PER_KIND = 5
#: Kinds whose reproducer is shrunk (a hang costs a timeout per replay); for
#: ``exact-refused`` only the delivery can get simpler.
SHRINKABLE = ("grant", "exact-refused")

#: Finding kind -> (fuzz case id, rule, severity word, title, requirement).
TOKEN_KINDS: dict[str, tuple[str, str, str, str, str]] = {
    "grant": ("fuzz.token.passes-only-exact-token", "T-S1", "MUST",
              "Passes only the exact fresh token",
              "Under fuzzing (prefixes, tails, suffixes, case flips, byte flips, another "
              "uid or pid, NUL/newline inserted or appended, alphabet swaps, empty, huge, "
              "two tokens, random bytes; split, paused or half-closed), the server answers "
              "PASS\\n\\0 only to exactly the fresh token; any other PASS is a FAIL with a "
              "shrunk reproducer."),
    "exact-refused": ("fuzz.token.passes-exact-token", "T-S1", "MUST",
                      "Passes the exact fresh token however it is written",
                      "Positive control: the exact fresh token, written in one piece as the "
                      "module does, half-closed, or split with short pauses, is answered "
                      "PASS\\n\\0 (a refusal means wrong polarity or a broken server)."),
    "hang": ("fuzz.token.answers-in-time", "T-S2", "MUST",
             "Answers every complete attempt within the timeout",
             "Every attempt at least as long as the token, or half-closed, gets a reply or "
             "a close within the timeout."),
    "unreachable": ("fuzz.token.serves-fresh-token", "T-S1", "MUST",
                    "Every fresh token's socket takes the connection",
                    "Once the token command has printed a token, the socket it names "
                    "accepts the attempt."),
}


# --------------------------------------------------------------------------- minting


class Minter:
    """Fresh tokens from the token command, ``ahead`` of them minted in threads.

    With a fixed socket (the server runs with ``--socket PATH``) tokens are minted one
    at a time, since two servers cannot share the path.
    """

    def __init__(self, command: str, *, socket: Path | None = None,
                 socket_dir: Path = SOCKET_DIR, command_timeout: float = 10.0,
                 ready_timeout: float = 2.0, ahead: int = 2,
                 max_age: float = MAX_TOKEN_AGE) -> None:
        self.command = command
        self.socket = socket
        self.socket_dir = socket_dir
        self.command_timeout = command_timeout
        self.ready_timeout = ready_timeout
        self.ahead = 0 if socket is not None else max(0, ahead)
        self.max_age = max_age
        self.sources: list[TokenSource] = []
        self._lock = threading.Lock()
        self._local = threading.local()
        self._pool = (ThreadPoolExecutor(self.ahead, thread_name_prefix="mint")
                      if self.ahead else None)
        self._queue: deque[Future[tuple[Minted, float]]] = deque()
        self.mints = 0
        self.mint_seconds = 0.0
        self.wait_seconds = 0.0
        self.discarded = 0

    def _source(self) -> TokenSource:
        source: TokenSource | None = getattr(self._local, "source", None)
        if source is None:
            source = TokenSource(self.command, socket=self.socket, socket_dir=self.socket_dir,
                                 command_timeout=self.command_timeout,
                                 ready_timeout=self.ready_timeout)
            with self._lock:
                self.sources.append(source)
            self._local.source = source
        return source

    def _mint(self) -> tuple[Minted, float]:
        started = time.monotonic()
        minted = self._source().mint()
        return minted, time.monotonic() - started

    def get(self) -> Minted:
        """A fresh token whose server waits (raises MintFailed)."""
        started = time.monotonic()
        try:
            while True:
                if self._pool is None:
                    minted, took = self._mint()
                else:
                    while len(self._queue) < self.ahead:
                        self._queue.append(self._pool.submit(self._mint))
                    future = self._queue.popleft()
                    self._queue.append(self._pool.submit(self._mint))
                    try:
                        minted, took = future.result(
                            timeout=self.command_timeout + self.ready_timeout + 5)
                    except TimeoutError:
                        raise MintFailed("the token command did not finish in time") from None
                self.mints += 1
                self.mint_seconds += took
                if minted.age <= self.max_age:
                    return minted
                spend(minted.socket)
                self.discarded += 1
        finally:
            self.wait_seconds += time.monotonic() - started

    def minted(self) -> list[Minted]:
        with self._lock:
            return [m for s in self.sources for m in s.minted]

    def close(self) -> None:
        """Stop minting; spend every token not used (its server exits)."""
        if self._pool is not None:
            for future in self._queue:
                future.cancel()
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._queue.clear()
        for source in self.sources:
            source.close()

    def __enter__(self) -> Minter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------- one attempt


@dataclass
class Attempt:
    """One executed case: the token it was made of, what was sent, what came back."""

    token: Token
    payload: bytes
    chunks: int
    shutdown: bool
    reply: TokenReply
    log: WireLog

    @property
    def exact(self) -> bool:
        return self.payload == self.token.raw


def execute(minted: Minted, case: TokenCase, timeout: float) -> Attempt:
    """Apply the case to the fresh token, write it as planned, read the reply."""
    token = minted.token
    payload = apply(case.transform, token)
    chunks, pauses, shutdown = case.delivery.plan(payload, len(token.raw))
    log = WireLog()
    try:
        conn = Connection(minted.socket, log, timeout)
    except ConnectFailed as exc:
        ready = "" if minted.ready else " (the socket file never appeared)"
        reply = TokenReply(b"", refused=f"{exc}{ready}")
        return Attempt(token, payload, len(chunks), shutdown, reply, log)
    with conn:
        try:
            for k, chunk in enumerate(chunks):
                if not conn.send(chunk):
                    break
                if pauses[k] > 0:
                    time.sleep(pauses[k])
            if shutdown and not conn.broken:
                conn.shutdown_write()
            reply = conn.read_reply(settle=SETTLE_S)
        except OSError as exc:  # anything Connection does not already turn into a reply
            log.add(conn.conn, "error", str(exc))
            reply = TokenReply(b"", reset=True, sent_all=False)
    return Attempt(token, payload, len(chunks), shutdown, reply, log)


@dataclass(frozen=True)
class Violation:
    kind: str
    expected: str
    observed: str


def judge(att: Attempt, timeout: float) -> Violation | None:
    """The oracle: PASS only for the exact fresh token, always, and in time."""
    r = att.reply
    if r.refused is not None:
        return Violation("unreachable", "a connection to the fresh token's socket",
                         r.describe())
    if r.grants:
        if att.exact:
            return None
        return Violation("grant", "a refusal: these bytes are not exactly the fresh token",
                         f"{r.describe()} for {att.payload[:80]!r}")
    if not r.data and r.timed_out:
        return Violation("hang", f"a reply or a close within {timeout:g} s of a complete "
                         "attempt", r.describe())
    if att.exact:
        return Violation("exact-refused", "PASS\\n\\0: these are exactly the fresh token's "
                         "bytes", r.describe())
    return None


# --------------------------------------------------------------------------- findings


@dataclass
class TokenFinding:
    """One oracle violation: a transformation (with its delivery) that reproduces it."""

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

    @property
    def case_id(self) -> str:
        return TOKEN_KINDS[self.kind][0]

    @property
    def rule(self) -> str:
        return TOKEN_KINDS[self.kind][1]

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
        if data.get("kind") not in TOKEN_KINDS or "transform" not in data:
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
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: cannot read a finding: {exc}") from None
        try:
            return cls.from_dict(data)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: {exc}") from None


# --------------------------------------------------------------------------- shrinking


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


Check = Callable[[TokenCase], "Attempt | None"]


def shrink_case(case: TokenCase, token: Token, check: Check, *, replays: int,
                seconds: float) -> tuple[TokenCase, Attempt | None, dict[str, Any]]:
    """Greedy descent: take the first simpler case that still reproduces, until none does.

    ``check`` mints a fresh token, runs the candidate and returns the attempt if it
    reproduces.  The token the finding was made with gives concrete lengths.
    """
    started = time.monotonic()
    used = 0
    seen = {case.key()}
    last: Attempt | None = None
    exhausted = False
    progress = True
    while progress:
        progress = False
        candidates = [replace(case, transform=t) for t in smaller(case.transform, token)]
        candidates += [replace(case, delivery=d) for d in simpler_delivery(case.delivery)]
        for cand in candidates:
            if cand.key() in seen:
                continue
            if used >= replays or time.monotonic() - started >= seconds:
                exhausted = True
                break
            seen.add(cand.key())
            used += 1
            got = check(cand)
            if got is not None:
                case, last, progress = cand, got, True
                break
    info = {"replays": used, "seconds": round(time.monotonic() - started, 3),
            "complete": not exhausted}
    return case, last, info


# --------------------------------------------------------------------------- the loop


@dataclass
class TokenFuzzConfig:
    command: str
    socket: Path | None = None
    socket_dir: Path = SOCKET_DIR
    seed: int = 1
    seconds: float = 10.0
    max_examples: int = 1_000_000
    timeout: float = 3.0
    command_timeout: float = 10.0
    ready_timeout: float = 2.0
    #: tokens minted in parallel threads ahead of use (0: one at a time)
    mint_ahead: int = field(default_factory=lambda: min(4, max(2, os.cpu_count() or 2)))
    #: stop once this many kinds of finding are recorded (0: run the whole budget)
    max_findings: int = 0
    shrink: bool = True
    shrink_replays: int = 40
    shrink_seconds: float = 10.0
    protocol: str = PROTOCOL


@dataclass
class TokenFuzzResult:
    config: TokenFuzzConfig
    findings: list[TokenFinding] = field(default_factory=list)
    execs: int = 0
    fuzz_seconds: float = 0.0
    shrink_seconds: float = 0.0
    stopped: str = ""
    error: str = ""
    digest: str = ""
    violations: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    generators: Counter[str] = field(default_factory=Counter)
    mints: int = 0
    mint_seconds: float = 0.0
    mint_wait_seconds: float = 0.0
    #: tokens actually minted ahead (0 with a fixed socket)
    mint_ahead: int = 0

    @property
    def execs_per_s(self) -> float:
        return self.execs / self.fuzz_seconds if self.fuzz_seconds > 0 else 0.0

    @property
    def mint_ms(self) -> float:
        return 1000 * self.mint_seconds / self.mints if self.mints else 0.0

    @property
    def mint_wait_share(self) -> float:
        return self.mint_wait_seconds / self.fuzz_seconds if self.fuzz_seconds > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "seed": self.config.seed, "execs": self.execs, "items": self.execs,
            "fuzz_seconds": round(self.fuzz_seconds, 3),
            "shrink_seconds": round(self.shrink_seconds, 3),
            "execs_per_s": round(self.execs_per_s, 1), "mints": self.mints,
            "mint_ms": round(self.mint_ms, 1), "mint_ahead": self.mint_ahead,
            "mint_wait_share": round(self.mint_wait_share, 3), "stopped": self.stopped,
            "error": self.error, "sequence_sha256": self.digest,
            "violations": dict(self.violations), "findings": len(self.findings),
            "generators": dict(self.generators),
        }


Event = Callable[[str], None]


class TokenFuzzer:
    def __init__(self, cfg: TokenFuzzConfig, on_event: Event | None = None) -> None:
        self.cfg = cfg
        self.generator = TokenGenerator(cfg.seed)
        self.say = on_event or (lambda text: None)
        self.result = TokenFuzzResult(cfg)
        self.minter = Minter(cfg.command, socket=cfg.socket, socket_dir=cfg.socket_dir,
                             command_timeout=cfg.command_timeout,
                             ready_timeout=cfg.ready_timeout, ahead=cfg.mint_ahead)
        self._recorded: set[str] = set()
        self._started = 0.0

    def run(self) -> TokenFuzzResult:
        """Fuzz within the budget; always spends leftover tokens before returning."""
        try:
            return self._run()
        finally:
            self.minter.close()
            res = self.result
            res.mints, res.mint_seconds = self.minter.mints, self.minter.mint_seconds
            res.mint_ahead = self.minter.ahead

    def _clock(self) -> float:
        return time.monotonic() - self._started - self.result.shrink_seconds

    def _run(self) -> TokenFuzzResult:
        cfg, res = self.cfg, self.result
        digest = hashlib.sha256()
        self._started = time.monotonic()
        shrink_wait = 0.0
        res.stopped = "count"
        try:
            for i in range(cfg.max_examples):
                if self._clock() >= cfg.seconds:
                    res.stopped = "time"
                    break
                case = self.generator.case(i)
                digest.update(case.key())
                try:
                    minted = self.minter.get()
                except MintFailed as exc:
                    res.stopped, res.error = "mint-failed", str(exc)
                    self.say(f"stopped: {exc}")
                    break
                att = execute(minted, case, cfg.timeout)
                res.execs += 1
                res.generators[case.generator.split(".")[0]] += 1
                violation = judge(att, cfg.timeout)
                if violation is not None:
                    before = self.minter.wait_seconds
                    self._violation(i, case, att, violation)
                    shrink_wait += self.minter.wait_seconds - before
                if cfg.max_findings and len(res.findings) >= cfg.max_findings:
                    res.stopped = "findings"
                    break
        except KeyboardInterrupt:  # Ctrl-C, SIGTERM: keep the findings so far
            res.stopped = "interrupted"
        res.fuzz_seconds = time.monotonic() - self._started - res.shrink_seconds
        res.mint_wait_seconds = self.minter.wait_seconds - shrink_wait
        res.digest = digest.hexdigest()
        return res

    def _violation(self, i: int, case: TokenCase, att: Attempt, v: Violation) -> None:
        res = self.result
        res.violations[v.kind] += 1
        if v.kind in self._recorded:
            examples = res.examples.setdefault(v.kind, [])
            if len(examples) < EXAMPLES_PER_KIND:
                examples.append({"iteration": i, "generator": case.generator,
                                 **case.as_dict(), "payload": repr(att.payload[:120]),
                                 "observed": v.observed})
            return
        finding = TokenFinding(v.kind, case, v.expected, v.observed, self.cfg.seed, i,
                               att.payload, att.token.text, self._clock(),
                               wire=att.log.as_list())
        if self.cfg.shrink and v.kind in SHRINKABLE:
            self._shrink(finding, att.token)
        self._recorded.add(v.kind)
        res.findings.append(finding)
        self.say(f"finding: {finding.kind} after {finding.found_after_s:.2f} s (item {i}, "
                 f"{case.generator}): {finding.case.describe()} -> "
                 f"{finding.payload[:60]!r}: {finding.observed}")

    def _check(self, kind: str) -> Check:
        def check(cand: TokenCase) -> Attempt | None:
            try:
                minted = self.minter.get()
            except MintFailed:
                return None
            got = execute(minted, cand, self.cfg.timeout)
            v = judge(got, self.cfg.timeout)
            return got if v is not None and v.kind == kind else None

        return check

    def _shrink(self, finding: TokenFinding, token: Token) -> None:
        started = time.monotonic()
        check = self._check(finding.kind)
        try:
            again = check(finding.case)
            if again is None:
                finding.shrink = {"reproduced": False, "note": "did not reproduce with a "
                                  "fresh token (timing-dependent?); saved as found"}
                return
            small, last, info = shrink_case(finding.case, token, check,
                                            replays=self.cfg.shrink_replays,
                                            seconds=self.cfg.shrink_seconds)
            finding.shrink = {"reproduced": True, "from": finding.case.as_dict(), **info}
            if last is not None:
                v = judge(last, self.cfg.timeout)
                finding.case = replace(small, generator=finding.case.generator)
                finding.payload, finding.token = last.payload, last.token.text
                finding.observed = v.observed if v else last.reply.describe()
                finding.wire = last.log.as_list()
        finally:
            self.result.shrink_seconds += time.monotonic() - started


# --------------------------------------------------------------------------- replay


def replay(finding: TokenFinding, mint: Callable[[], Minted], timeout: float) -> tuple[
        bool, Attempt]:
    """Mint a fresh token, apply the finding's transformation, judge it as its kind."""
    att = execute(mint(), finding.case, timeout)
    v = judge(att, timeout)
    return v is not None and v.kind == finding.kind, att


# --------------------------------------------------------------------------- report


def _noop(ctx: Any) -> None:
    return None


def token_fuzz_cases() -> list[Case]:
    """The fuzz cases (graded from a fuzz run, not run alone)."""
    return [Case(cid, rule, Severity(sev), title, req, PROTOCOL, "server", _noop, "fuzz")
            for cid, rule, sev, title, req in TOKEN_KINDS.values()]


def target_result(name: str, result: TokenFuzzResult, *, files: dict[str, Path] | None = None,
                  base: Path | None = None) -> TargetResult:
    """Grade each token fuzz case from the run's findings."""
    files = files or {}
    target = TargetResult(name=name, kind="server", protocol=PROTOCOL)
    by_kind = {f.kind: f for f in result.findings}
    note = (f"seed {result.config.seed}: {result.execs} attempts, one fresh token each, in "
            f"{result.fuzz_seconds:.1f} s ({result.execs_per_s:.1f}/s; minting took "
            f"{result.mint_ms:.0f} ms a token, {result.mint_wait_share:.0%} of the time spent "
            f"waiting for one), stopped by "
            f"{result.stopped}")
    for case, kind in zip(token_fuzz_cases(), TOKEN_KINDS, strict=True):
        evidence: dict[str, Any] = {"notes": [note]}
        found = by_kind.get(kind)
        if found is not None:
            entry = found.as_dict()
            where = files.get(found.file_name())
            if where is not None:
                inside = base is not None and where.is_relative_to(base)
                entry["file"] = str(where.relative_to(base)) if inside and base else str(where)
            evidence["findings"] = [entry]
            if result.examples.get(kind):
                evidence["more_examples"] = result.examples[kind]
            verdict = Verdict.FAIL
            message = (f"{result.violations[kind]} violation(s); reproducer "
                       f"{found.case.describe()} = {found.payload[:60]!r}: expected "
                       f"{found.expected}; got {found.observed}"
                       + (f" ({where.name})" if where else ""))
        elif result.stopped == "mint-failed":
            verdict, message = Verdict.ERROR, f"fuzzing stopped: {result.error}"
        else:
            verdict, message = Verdict.PASS, ""
        target.results.append(CaseResult(case, verdict, message, result.fuzz_seconds, evidence))
    target.info["fuzz"] = result.summary()
    return target

