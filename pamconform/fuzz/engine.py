"""The fuzz loop: generate, send, judge, shrink, bounded by count and time."""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pamconform.fuzz.generators import Generator
from pamconform.fuzz.memory import MemoryWatch
from pamconform.fuzz.model import Burst, Exec, Finding, Item
from pamconform.fuzz.oracle import Oracle, Violation
from pamconform.fuzz.replay import attempt
from pamconform.fuzz.shrink import shrink
from pamconform.fuzz.wire import Outcome, StallPool, probe, run_burst, run_exec
from pamconform.protocols.redirector.client import request

#: Kinds whose reproducer can be shrunk by replaying it (the others cost a timeout
#: per replay, or need a fresh server).
SHRINKABLE = ("grant", "valid-denied", "original-grant", "trailing-grant")
#: Unshrunk further occurrences of a kind kept as evidence.
EXAMPLES_PER_KIND = 5


@dataclass
class FuzzConfig:
    socket: Path
    credentials: list[tuple[bytes, bytes]]
    protocol: str = "redirector"
    seed: int = 1
    seconds: float = 10.0
    max_examples: int = 1_000_000
    timeout: float = 3.0
    corpus: list[bytes] = field(default_factory=list)
    pid: int | None = None
    memory_limit_mib: float = 512.0
    #: stop once this many kinds of finding are recorded (0: run the whole budget)
    max_findings: int = 0
    #: 0: count violations only, never record, shrink or stop (benchmarks)
    record: bool = True
    shrink: bool = True
    shrink_replays: int = 150
    shrink_seconds: float = 10.0
    #: how long a stalled attempt waits for the server to give up on it (--idle-limit)
    idle_limit: float = 10.0
    #: stalled attempts waited out at once; when all are taken, a stall ends with a close
    stall_slots: int = 4


@dataclass
class FuzzResult:
    config: FuzzConfig
    findings: list[Finding] = field(default_factory=list)
    items: int = 0
    execs: int = 0
    fuzz_seconds: float = 0.0
    shrink_seconds: float = 0.0
    stopped: str = ""
    digest: str = ""
    violations: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    generators: Counter[str] = field(default_factory=Counter)
    memory: dict[str, Any] | None = None
    #: stalled attempts waited out, and those that ended with a close (no slot free)
    stalls: int = 0
    stalls_closed: int = 0

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
            "stalls": self.stalls,
            "stalls_closed": self.stalls_closed,
        }


Event = Callable[[str], None]


def _family(generator: str) -> str:
    return generator.split("(")[0].split(".")[0].split("-")[0] or "?"


class Fuzzer:
    def __init__(self, cfg: FuzzConfig, on_event: Event | None = None) -> None:
        if cfg.protocol != "redirector":
            raise ValueError(f"protocol {cfg.protocol!r} is not fuzzed yet")
        self.cfg = cfg
        self.path = str(cfg.socket)
        self.oracle = Oracle(cfg.credentials)
        self.generator = Generator(cfg.seed, cfg.credentials, cfg.corpus,
                                   stall_s=cfg.idle_limit)
        self.stalled = StallPool(self.path, cfg.timeout, cfg.stall_slots)
        self.valid = tuple(request(u, p) for u, p in cfg.credentials)
        self.users = tuple(u.decode("utf-8", "replace") for u, _ in cfg.credentials)
        self.say = on_event or (lambda text: None)
        self.result = FuzzResult(cfg)
        self.watch = MemoryWatch(cfg.pid, cfg.memory_limit_mib) if cfg.pid else None
        self._recorded: set[str] = set()
        self._started = 0.0

    # -- the loop -------------------------------------------------------------------

    def run(self) -> FuzzResult:
        cfg, res = self.cfg, self.result
        digest = hashlib.sha256()
        previous: Item | None = None
        started = self._started = time.monotonic()
        if self.watch:
            self.watch.sample(force=True)
        res.stopped = "count"
        try:
            for i in range(cfg.max_examples):
                if self._clock() >= cfg.seconds:
                    res.stopped = "time"
                    break
                self._judge_stalls(self.stalled.poll())
                item = self.generator.item(i)
                digest.update(item.key())
                members, outs = self._send(i, item)
                res.items += 1
                res.generators[_family(item.generator)] += 1
                if not members:  # a parked stall: judged when it ends
                    continue
                res.execs += len(members)
                if self.watch and self.watch.sample():
                    self._memory_check(i, item)
                if self._gone(i, item, previous, members, outs):
                    res.stopped = "server-gone"
                    break
                for ex, out in zip(members, outs, strict=True):
                    self._judge(i, item, ex, out)
                if self._enough():
                    res.stopped = "findings"
                    break
                previous = item
            self._judge_stalls(self.stalled.drain())
        except KeyboardInterrupt:  # Ctrl-C, SIGTERM: keep the findings so far
            res.stopped = "interrupted"
        finally:
            self.stalled.close()
        res.fuzz_seconds = time.monotonic() - started - res.shrink_seconds
        if self.watch:
            self.watch.sample(force=True)
            res.memory = self.watch.summary()
            self._memory_check(res.items, previous, final=True)
        res.digest = digest.hexdigest()
        return res

    def _enough(self) -> bool:
        cfg = self.cfg
        return bool(cfg.record and cfg.max_findings
                    and len(self.result.findings) >= cfg.max_findings)

    def _judge(self, i: int, item: Item, ex: Exec, out: Outcome) -> None:
        violation = self.oracle.judge(ex, out)
        if violation is not None:
            self._violation(i, item, ex, out, violation)

    def _judge_stalls(self, ended: list[tuple[int, Exec, Outcome]]) -> None:
        """Judge stalled attempts that ended (a refused connect is left to the probe of
        the next item)."""
        for i, ex, out in ended:
            self.result.execs += 1
            if not self._enough():
                self._judge(i, ex, ex, out)

    def _clock(self) -> float:
        """Fuzzing time so far (shrinking excluded)."""
        return time.monotonic() - self._started - self.result.shrink_seconds

    def _send(self, i: int, item: Item) -> tuple[tuple[Exec, ...], list[Outcome]]:
        """The attempts sent and their outcomes; none for a stall that was parked."""
        if isinstance(item, Burst):
            return item.execs, run_burst(self.path, item.execs, self.cfg.timeout)
        if item.stalls:
            if self.stalled.full:
                self.result.stalls_closed += 1
                item = replace(item, shutdown=True, stall_s=0.0)
            else:
                self.result.stalls += 1
                out = self.stalled.start(item, i)
                return ((), []) if out is None else ((item,), [out])
        return (item,), [run_exec(self.path, item, self.cfg.timeout)]

    # -- oracles ----------------------------------------------------------------------

    def _gone(self, i: int, item: Item, previous: Item | None, members: tuple[Exec, ...],
              outs: list[Outcome]) -> bool:
        """Whether the server stopped accepting; records a ``refused`` finding if so."""
        suspicious = [k for k, o in enumerate(outs) if o.refused or (o.closed and not o.reply)]
        if not suspicious or probe(self.path, min(self.cfg.timeout, 1.0)):
            return False
        dying = [k for k in suspicious if not outs[k].refused]
        if dying:  # this item's connection was dropped without a reply: it is the culprit
            k = dying[0]
            culprit, rest = members[k], tuple(m for j, m in enumerate(members) if j != k)
            observed = (f"{outs[k].describe()}, then the socket refused connections")
            at = i
        else:  # refused from the start: what came before did it
            source = previous if previous is not None else item
            execs = source.execs if isinstance(source, Burst) else (source,)
            culprit, rest = execs[0], execs[1:] if isinstance(source, Burst) else ()
            observed = "the socket refused connections after this request"
            at = i - 1
        if self.cfg.record and "refused" not in self._recorded:
            self._record(Finding(
                self.cfg.protocol, "refused", culprit,
                "the server keeps accepting connections after any request", observed,
                self.cfg.seed, at, setup=self._setup(at), concurrent=rest, users=self.users,
                valid=self.valid,
                found_after_s=self._clock()))
        self.result.violations["refused"] += 1
        return True

    def _violation(self, i: int, item: Item, ex: Exec, out: Outcome, v: Violation) -> None:
        res = self.result
        res.violations[v.kind] += 1
        if not self.cfg.record:
            return
        found = self._clock()
        if v.kind in self._recorded:
            examples = res.examples.setdefault(v.kind, [])
            if len(examples) < EXAMPLES_PER_KIND:
                examples.append({"iteration": i, "generator": ex.generator,
                                 "payload": repr(ex.payload[:120]), "observed": v.observed})
            return
        concurrent: tuple[Exec, ...] = ()
        if isinstance(item, Burst):
            alone = attempt(self.path, v.kind, ex, self.oracle, self.cfg.timeout,
                            setup=self._setup(i))
            if not alone.reproduces:
                concurrent = tuple(m for m in item.execs if m is not ex)
            ex = replace(ex, generator=f"{item.generator}/{ex.generator or '-'}")
        finding = Finding(self.cfg.protocol, v.kind, ex, v.expected, v.observed, self.cfg.seed,
                          i, setup=self._setup(i), concurrent=concurrent, users=self.users,
                          valid=self.valid, found_after_s=found)
        # a stall costs the server's idle timeout per replay: it is saved as found
        if self.cfg.shrink and v.kind in SHRINKABLE and not concurrent and not ex.stalls:
            try:
                finding = self._shrink(finding)
            except KeyboardInterrupt:
                finding.shrink = {"reproduced": False,
                                  "note": "interrupted while shrinking; saved as found"}
                self._record(finding)
                raise
        self._record(finding)

    def _memory_check(self, i: int, item: Item | None, final: bool = False) -> bool:
        if not self.watch or "memory" in self._recorded or not self.cfg.record:
            return False
        if not self.watch.unbounded():
            return False
        last = item.execs[0] if isinstance(item, Burst) else item
        ex = last if last is not None else Exec((self.valid[0],))
        summary = self.watch.summary()
        self.result.violations["memory"] += 1
        self._record(Finding(
            self.cfg.protocol, "memory", ex,
            f"RSS to stay within {self.cfg.memory_limit_mib:.0f} MiB of its start",
            f"RSS grew {summary['growth_mib']} MiB and was still rising "
            f"({summary['first_kib']} -> {summary['last_kib']} KiB)",
            self.cfg.seed, i, users=self.users, valid=self.valid, found_after_s=self._clock(),
            extra={"memory": summary}))
        return True

    # -- findings ---------------------------------------------------------------------

    def _setup(self, i: int) -> tuple[bytes, ...]:
        """The valid logins sent before item i (stateful servers need them)."""
        return self.valid[: min(i, len(self.valid))]

    def _shrink(self, finding: Finding) -> Finding:
        started = time.monotonic()
        kind = finding.kind

        def check(cand: Exec, setup: tuple[bytes, ...]) -> bool:
            return attempt(self.path, kind, cand, self.oracle, self.cfg.timeout,
                           setup=setup).reproduces

        # A server that learns (from grants) reproduces without the setup during the run,
        # but the saved finding keeps it so a fresh server reproduces it too.
        setup: tuple[bytes, ...] = ()
        if not check(finding.exec, ()):
            setup = finding.setup
            if not check(finding.exec, setup):
                finding.shrink = {"reproduced": False, "note": "did not reproduce on replay "
                                  "(timing-dependent?); saved as found"}
                self.result.shrink_seconds += time.monotonic() - started
                return finding
        small, info = shrink(finding.exec, lambda c: check(c, setup),
                             keep_bytes=kind == "valid-denied", valid=self.valid,
                             replays=self.cfg.shrink_replays, seconds=self.cfg.shrink_seconds)
        final = attempt(self.path, kind, small, self.oracle, self.cfg.timeout,
                        setup=finding.setup)
        if final.reproduces:
            finding.exec = replace(small, generator=finding.exec.generator)
            finding.observed = final.violation.observed if final.violation else final.text
        else:
            info["note"] = "the shrunk reproducer did not reproduce after the setup; kept as found"
        finding.shrink = {"reproduced": True, **info}
        self.result.shrink_seconds += time.monotonic() - started
        return finding

    def _record(self, finding: Finding) -> None:
        self._recorded.add(finding.kind)
        self.result.findings.append(finding)
        self.say(f"finding: {finding.kind} after {finding.found_after_s:.2f} s "
                 f"(item {finding.iteration}, {finding.exec.generator or '-'}): "
                 f"{finding.exec.payload[:80]!r} -> {finding.observed}")
