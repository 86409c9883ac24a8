"""The redirector protocol's fuzz model: byte-level requests on one UNIX socket.

Items are :class:`Exec` (one connection) or :class:`Burst` (several at once); the
oracle grants only the exact bytes of a known-valid request (``fuzz_oracle``); stalled
attempts are parked in a pool and waited out in the background; a server that stops
accepting is a ``refused`` finding and ends the run; findings shrink by delta debugging
(``fuzz_shrink``) and replay with the run's valid logins first (``fuzz_replay``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pamconform.core.wirelog import WireLog
from pamconform.fuzz.engine import FuzzConfig
from pamconform.fuzz.interface import FuzzModel, Replayed, Violation
from pamconform.protocols.redirector.client import request
from pamconform.protocols.redirector.fuzz_generators import Generator
from pamconform.protocols.redirector.fuzz_items import KINDS, Burst, Exec, Finding, Item
from pamconform.protocols.redirector.fuzz_oracle import Oracle
from pamconform.protocols.redirector.fuzz_regression import RedirectorRegressions
from pamconform.protocols.redirector.fuzz_replay import attempt, replay
from pamconform.protocols.redirector.fuzz_shrink import shrink
from pamconform.protocols.redirector.fuzz_wire import (
    Outcome,
    StallPool,
    probe,
    run_burst,
    run_exec,
)

PROTOCOL = "redirector"


@dataclass
class Target:
    """The server to fuzz and what the generator works from."""

    socket: Path
    credentials: list[tuple[bytes, bytes]]
    corpus: list[bytes] = field(default_factory=list)
    #: how long a stalled attempt waits for the server to give up on it (--idle-limit)
    idle_limit: float = 10.0
    #: stalled attempts waited out at once; when all are taken, a stall ends with a close
    stall_slots: int = 4


class Session:
    """One run against one server (see the module docstring)."""

    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg
        t: Target = cfg.target
        self.path = str(t.socket)
        self.oracle = Oracle(t.credentials)
        self.generator = Generator(cfg.seed, t.credentials, t.corpus, stall_s=t.idle_limit)
        self.stalled = StallPool(self.path, cfg.timeout, t.stall_slots)
        self.valid = tuple(request(u, p) for u, p in t.credentials)
        self.users = tuple(u.decode("utf-8", "replace") for u, _ in t.credentials)
        self.stalls = 0
        self.stalls_closed = 0

    def generate(self, i: int) -> Item:
        return self.generator.item(i)

    def send(self, i: int, item: Item) -> Sequence[tuple[Exec, Outcome]]:
        if isinstance(item, Burst):
            outs = run_burst(self.path, item.execs, self.cfg.timeout)
            return list(zip(item.execs, outs, strict=True))
        if item.stalls:
            if self.stalled.full:
                self.stalls_closed += 1
                item = replace(item, shutdown=True, stall_s=0.0)
            else:
                self.stalls += 1
                out = self.stalled.start(item, i)
                return [] if out is None else [(item, out)]
        return [(item, run_exec(self.path, item, self.cfg.timeout))]

    def ended(self, wait: bool) -> Sequence[tuple[int, Exec, Outcome]]:
        return self.stalled.drain() if wait else self.stalled.poll()

    def judge(self, ex: Exec, out: Outcome) -> Violation | None:
        return self.oracle.judge(ex, out)

    def _setup(self, i: int) -> tuple[bytes, ...]:
        """The valid logins sent before item i (stateful servers need them)."""
        return self.valid[: min(i, len(self.valid))]

    def _finding(self, kind: str, ex: Exec, expected: str, observed: str, i: int,
                 found: float, **more: Any) -> Finding:
        return Finding(PROTOCOL, kind, ex, expected, observed, self.cfg.seed, i,
                       users=self.users, valid=self.valid, found_after_s=found, **more)

    def gone(self, i: int, item: Item, previous: Item | None,
             sent: Sequence[tuple[Exec, Outcome]], found_after_s: float) -> Finding | None:
        """A ``refused`` finding when the server stopped accepting connections."""
        members = [ex for ex, _ in sent]
        outs = [out for _, out in sent]
        suspicious = [k for k, o in enumerate(outs) if o.refused or (o.closed and not o.reply)]
        if not suspicious or probe(self.path, min(self.cfg.timeout, 1.0)):
            return None
        dying = [k for k in suspicious if not outs[k].refused]
        if dying:  # this item's connection was dropped without a reply: it is the culprit
            k = dying[0]
            culprit, rest = members[k], tuple(m for j, m in enumerate(members) if j != k)
            observed = f"{outs[k].describe()}, then the socket refused connections"
            at = i
        else:  # refused from the start: what came before did it
            source = previous if previous is not None else item
            execs = source.execs if isinstance(source, Burst) else (source,)
            culprit, rest = execs[0], execs[1:] if isinstance(source, Burst) else ()
            observed = "the socket refused connections after this request"
            at = i - 1
        return self._finding("refused", culprit, "the server keeps accepting connections "
                             "after any request", observed, at, found_after_s,
                             setup=self._setup(at), concurrent=rest)

    def finding(self, i: int, item: Item, ex: Exec, out: Outcome, v: Violation,
                found_after_s: float) -> Finding:
        concurrent: tuple[Exec, ...] = ()
        if isinstance(item, Burst):
            alone = attempt(self.path, v.kind, ex, self.oracle, self.cfg.timeout,
                            setup=self._setup(i))
            if not alone.reproduces:
                concurrent = tuple(m for m in item.execs if m is not ex)
            ex = replace(ex, generator=f"{item.generator}/{ex.generator or '-'}")
        return self._finding(v.kind, ex, v.expected, v.observed, i, found_after_s,
                             setup=self._setup(i), concurrent=concurrent)

    def memory_finding(self, i: int, item: Item | None, v: Violation,
                       memory: dict[str, Any], found_after_s: float) -> Finding:
        last = item.execs[0] if isinstance(item, Burst) else item
        ex = last if last is not None else Exec((self.valid[0],))
        return self._finding(v.kind, ex, v.expected, v.observed, i, found_after_s,
                             extra={"memory": memory})

    def example(self, ex: Exec, out: Outcome) -> dict[str, Any]:
        return {"generator": ex.generator, "payload": repr(ex.payload[:120])}

    def can_shrink(self, finding: Finding) -> bool:
        # a stall costs the server's idle timeout per replay: it is saved as found
        return not finding.concurrent and not finding.exec.stalls

    def shrink(self, finding: Finding, replays: int, seconds: float) -> None:
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
                return
        small, info = shrink(finding.exec, lambda c: check(c, setup),
                             keep_bytes=kind == "valid-denied", valid=self.valid,
                             replays=replays, seconds=seconds)
        final = attempt(self.path, kind, small, self.oracle, self.cfg.timeout,
                        setup=finding.setup)
        if final.reproduces:
            finding.exec = replace(small, generator=finding.exec.generator)
            finding.observed = final.violation.observed if final.violation else final.text
        else:
            info["note"] = "the shrunk reproducer did not reproduce after the setup; kept as found"
        finding.shrink = {"reproduced": True, **info}

    def stats(self, fuzz_seconds: float) -> dict[str, Any]:
        return {"stalls": self.stalls, "stalls_closed": self.stalls_closed}

    def close(self) -> None:
        self.stalled.close()


class RedirectorModel:
    """``MODEL``: the redirector protocol for the fuzz engine."""

    protocol = PROTOCOL
    kinds = KINDS
    options = "pamconform.protocols.redirector.fuzz_cli"
    module = "pamconform.protocols.redirector.fuzz_module:MODULE"
    regressions = RedirectorRegressions()

    def open(self, cfg: Any) -> Session:
        return Session(cfg)

    def load_finding(self, data: Any) -> Finding:
        return Finding.from_dict(data)

    def replay(self, finding: Finding, cfg: Any) -> Replayed:
        """Replay against ``cfg.target.socket`` with the finding's own valid logins."""
        oracle = Oracle([])
        oracle.valid = frozenset(finding.valid)
        log = WireLog()
        got = replay(finding, str(cfg.target.socket), oracle, cfg.timeout, log=log,
                     pid=cfg.pid)
        got.log = log
        return got

    def run_note(self, result: Any) -> str:
        return (f"seed {result.config.seed}: {result.items} items, {result.execs} connections "
                f"in {result.fuzz_seconds:.1f} s ({result.execs_per_s:.0f}/s), stopped by "
                f"{result.stopped}")


MODEL: FuzzModel = RedirectorModel()


def config(socket: Path | str, credentials: list[tuple[bytes, bytes]], *,
           corpus: list[bytes] | None = None, idle_limit: float = 10.0,
           stall_slots: int = 4, **engine: Any) -> FuzzConfig:
    """A FuzzConfig for this protocol (``engine``: the engine's knobs)."""
    return FuzzConfig(PROTOCOL, Target(Path(socket), credentials, list(corpus or []),
                                       idle_limit, stall_slots), **engine)
