"""The fuzz loop: generate, send, judge, shrink, bounded by count and time.

The loop knows no protocol: a :class:`pamconform.fuzz.interface.FuzzModel`, found in the
protocol registry by the config's ``protocol``, generates the items, sends them, judges
the outcomes and shrinks the findings. It tells its events (findings, a stop, and every
:data:`PROGRESS_SECONDS` of fuzzing a progress line) to the ``on_event`` callback.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pamconform import protocols
from pamconform.fuzz.interface import Finding, FuzzModel, FuzzSession, StopFuzzing, Violation
from pamconform.fuzz.memory import MemoryWatch

#: Unshrunk further occurrences of a kind kept as evidence.
EXAMPLES_PER_KIND = 5
#: The kind of an unbounded-memory finding (models that can reproduce one declare it).
MEMORY = "memory"
#: Seconds of fuzzing between two progress events (items, attempts, rate, findings).
PROGRESS_SECONDS = 5.0


def model_for(protocol: str) -> FuzzModel:
    """The fuzz model of a registered protocol (ValueError if it has none)."""
    spec = protocols.get(protocol).fuzz_model
    if spec is None:
        raise ValueError(f"protocol {protocol!r} is not fuzzed")
    model: FuzzModel = protocols.load(spec)
    return model


def fuzzed_protocols() -> list[str]:
    """The registered protocols that have a fuzz model."""
    return [p.name for p in protocols.all_protocols() if p.fuzz_model]


def module_fuzzed_protocols() -> list[str]:
    """The protocols whose modules ``fuzz module`` can fuzz (their model has ``module``)."""
    return [name for name in fuzzed_protocols() if model_for(name).module]


@dataclass
class FuzzConfig:
    """The engine's budget and knobs; ``target`` holds the model's own options."""

    protocol: str
    target: Any
    seed: int = 1
    seconds: float = 10.0
    max_examples: int = 1_000_000
    timeout: float = 3.0
    #: the server's pid: its RSS is watched for unbounded growth
    pid: int | None = None
    memory_limit_mib: float = 512.0
    #: stop once this many kinds of finding are recorded (0: run the whole budget)
    max_findings: int = 0
    #: False: count violations only, never record, shrink or stop (benchmarks)
    record: bool = True
    shrink: bool = True
    shrink_replays: int = 150
    shrink_seconds: float = 10.0


@dataclass
class FuzzResult:
    config: FuzzConfig
    findings: list[Any] = field(default_factory=list)
    items: int = 0
    execs: int = 0
    fuzz_seconds: float = 0.0
    shrink_seconds: float = 0.0
    stopped: str = ""
    #: why the run could not go on (its cases grade ERROR)
    error: str = ""
    digest: str = ""
    violations: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    generators: Counter[str] = field(default_factory=Counter)
    memory: dict[str, Any] | None = None
    #: what the model adds to the summary (stalls, minting...)
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def execs_per_s(self) -> float:
        return self.execs / self.fuzz_seconds if self.fuzz_seconds > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "seed": self.config.seed,
            "items": self.items,
            "execs": self.execs,
            "fuzz_seconds": round(self.fuzz_seconds, 3),
            "shrink_seconds": round(self.shrink_seconds, 3),
            "execs_per_s": round(self.execs_per_s, 1),
            "stopped": self.stopped,
            "sequence_sha256": self.digest,
            "violations": dict(self.violations),
            "findings": len(self.findings),
            "generators": dict(self.generators),
            **({"error": self.error} if self.error else {}),
            **self.stats,
        }


Event = Callable[[str], None]


def family(generator: str) -> str:
    """The generator family counted in the summary (``walk.pw-flip(3)`` -> ``walk``)."""
    return generator.split("(")[0].split(".")[0].split("-")[0] or "?"


class Fuzzer:
    def __init__(self, cfg: FuzzConfig, on_event: Event | None = None, *,
                 model: FuzzModel | None = None) -> None:
        self.cfg = cfg
        self.model = model if model is not None else model_for(cfg.protocol)
        self.say = on_event or (lambda text: None)
        self.result = FuzzResult(cfg)
        self.watch = MemoryWatch(cfg.pid, cfg.memory_limit_mib) if cfg.pid else None
        self.session: FuzzSession = self.model.open(cfg)
        self._recorded: set[str] = set()
        self._started = 0.0

    # -- the loop -------------------------------------------------------------------

    def run(self) -> FuzzResult:
        """Fuzz within the budget; the session is closed before returning."""
        try:
            return self._run()
        finally:
            self.session.close()
            self.result.stats = self.session.stats(self.result.fuzz_seconds)

    def _run(self) -> FuzzResult:
        cfg, res, session = self.cfg, self.result, self.session
        digest = hashlib.sha256()
        previous: Any = None
        started = self._started = time.monotonic()
        if self.watch:
            self.watch.sample(force=True)
        res.stopped = "count"
        every = PROGRESS_SECONDS
        next_progress = every
        try:
            for i in range(cfg.max_examples):
                clock = self._clock()
                if clock >= cfg.seconds:
                    res.stopped = "time"
                    break
                if every > 0 and clock >= next_progress:
                    while next_progress <= clock:
                        next_progress += every
                    self._progress(clock)
                self._judge_ended(session.ended(wait=False))
                item = session.generate(i)
                digest.update(item.key())
                try:
                    sent = session.send(i, item)
                except StopFuzzing as exc:
                    res.stopped, res.error = exc.reason, str(exc)
                    self.say(f"stopped: {exc}")
                    break
                res.items += 1
                res.generators[family(item.generator)] += 1
                if not sent:  # parked: judged when it ends
                    continue
                res.execs += len(sent)
                if self.watch and self.watch.sample():
                    self._memory_check(i, item)
                if self._gone(i, item, previous, sent):
                    res.stopped = "server-gone"
                    break
                for attempt, outcome in sent:
                    self._judge(i, item, attempt, outcome)
                if self._enough():
                    res.stopped = "findings"
                    break
                previous = item
            self._judge_ended(session.ended(wait=True))
        except KeyboardInterrupt:  # Ctrl-C, SIGTERM: keep the findings so far
            res.stopped = "interrupted"
        res.fuzz_seconds = time.monotonic() - started - res.shrink_seconds
        if self.watch:
            self.watch.sample(force=True)
            res.memory = self.watch.summary()
            self._memory_check(res.items, previous)
        res.digest = digest.hexdigest()
        return res

    def _enough(self) -> bool:
        cfg = self.cfg
        return bool(cfg.record and cfg.max_findings
                    and len(self.result.findings) >= cfg.max_findings)

    def _judge(self, i: int, item: Any, attempt: Any, outcome: Any) -> None:
        violation = self.session.judge(attempt, outcome)
        if violation is not None:
            self._violation(i, item, attempt, outcome, violation)

    def _judge_ended(self, ended: Sequence[tuple[int, Any, Any]]) -> None:
        """Judge parked attempts that ended (a refused connect is left to the check of
        the next item)."""
        for i, attempt, outcome in ended:
            self.result.execs += 1
            if not self._enough():
                self._judge(i, attempt, attempt, outcome)

    def _progress(self, clock: float) -> None:
        """``5.0 s: 1,234 items, 1,456 attempts (291/s), 0 findings`` (fuzzing time)."""
        res = self.result
        found = len(res.findings)
        rate = res.execs / clock if clock > 0 else 0.0
        self.say(f"{clock:.1f} s: {res.items:,} items, {res.execs:,} attempts ({rate:,.0f}/s), "
                 f"{found} finding{'' if found == 1 else 's'}")

    def _clock(self) -> float:
        """Fuzzing time so far (shrinking excluded)."""
        return time.monotonic() - self._started - self.result.shrink_seconds

    # -- oracles ----------------------------------------------------------------------

    def _gone(self, i: int, item: Any, previous: Any, sent: Sequence[tuple[Any, Any]]) -> bool:
        """Whether the target stopped serving; records the model's finding if so."""
        finding = self.session.gone(i, item, previous, sent, self._clock())
        if finding is None:
            return False
        if self.cfg.record and finding.kind not in self._recorded:
            self._record(finding)
        self.result.violations[finding.kind] += 1
        return True

    def _violation(self, i: int, item: Any, attempt: Any, outcome: Any, v: Violation) -> None:
        res = self.result
        res.violations[v.kind] += 1
        if not self.cfg.record:
            return
        found = self._clock()
        if v.kind in self._recorded:
            examples = res.examples.setdefault(v.kind, [])
            if len(examples) < EXAMPLES_PER_KIND:
                examples.append({"iteration": i, **self.session.example(attempt, outcome),
                                 "observed": v.observed})
            return
        finding = self.session.finding(i, item, attempt, outcome, v, found)
        kind = self.model.kinds[v.kind]
        if self.cfg.shrink and kind.shrink and self.session.can_shrink(finding):
            try:
                self._shrink(finding)
            except KeyboardInterrupt:
                finding.shrink = {"reproduced": False,
                                  "note": "interrupted while shrinking; saved as found"}
                self._record(finding)
                raise
        self._record(finding)

    def _memory_check(self, i: int, item: Any) -> None:
        if not self.watch or MEMORY in self._recorded or not self.cfg.record:
            return
        if not self.watch.unbounded():
            return
        summary = self.watch.summary()
        violation = Violation(
            MEMORY, f"RSS to stay within {self.cfg.memory_limit_mib:.0f} MiB of its start",
            f"RSS grew {summary['growth_mib']} MiB and was still rising "
            f"({summary['first_kib']} -> {summary['last_kib']} KiB)")
        finding = self.session.memory_finding(i, item, violation, summary, self._clock())
        if finding is not None:
            self.result.violations[MEMORY] += 1
            self._record(finding)

    # -- findings ---------------------------------------------------------------------

    def _shrink(self, finding: Finding) -> None:
        started = time.monotonic()
        try:
            self.session.shrink(finding, self.cfg.shrink_replays, self.cfg.shrink_seconds)
        finally:
            self.result.shrink_seconds += time.monotonic() - started

    def _record(self, finding: Finding) -> None:
        self._recorded.add(finding.kind)
        self.result.findings.append(finding)
        self.say(f"finding: {finding.kind} after {finding.found_after_s:.2f} s "
                 f"(item {finding.iteration}, {finding.generator or '-'}): "
                 f"{finding.reproducer()} -> {finding.observed}")
