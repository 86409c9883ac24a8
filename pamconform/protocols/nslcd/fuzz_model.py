"""The nslcd protocol's fuzz model: structure-aware PAM requests to an nslcd daemon.

Items are :class:`~pamconform.protocols.nslcd.fuzz_items.Exec` (one connection, maybe
with stalled clients held around it) from ``fuzz_generators``; the oracle
(``fuzz_oracle``) reads back from the bytes sent what was asked and grants only the
exact credentials of a given login; stalled attempts wait in the background
(``fuzz_wire.StallPool``); a daemon that stops accepting connections is a ``gone``
finding and ends the run. Findings shrink to a simpler delivery (one write, no stalled
clients) and replay with the logins given then.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pamconform.core.wirelog import WireLog
from pamconform.fuzz.engine import FuzzConfig
from pamconform.fuzz.interface import FuzzModel, Replayed, Violation
from pamconform.fuzz.shrink import Budget, descend

from .fuzz_generators import Generator
from .fuzz_items import KINDS, PROTOCOL, Exec, Finding
from .fuzz_oracle import Oracle
from .fuzz_wire import Outcome, StallPool, dies, listening, run_exec

#: Seconds to wait for a connection when checking that the daemon is still there.
PROBE_S = 1.0


@dataclass
class Target:
    """The daemon's socket, the logins the oracle grants, and the stall bounds."""

    socket: Path
    credentials: list[tuple[bytes, bytes]]
    #: how long a stalled client waits for the daemon to close it (--idle-limit)
    idle_limit: float = 10.0
    #: stalled attempts waited out at once; when all are taken a stall is half-closed
    stall_slots: int = 4


class Session:
    """One run against one daemon (see the module docstring)."""

    def __init__(self, cfg: FuzzConfig) -> None:
        self.cfg = cfg
        t: Target = cfg.target
        self.path = str(t.socket)
        self.oracle = Oracle(t.credentials)
        self.generator = Generator(cfg.seed, t.credentials, stall_s=t.idle_limit)
        self.stalled = StallPool(self.path, cfg.timeout, t.stall_slots)
        self.valid = tuple(t.credentials)
        self.stalls = 0
        self.stalls_closed = 0

    def generate(self, i: int) -> Exec:
        return self.generator.item(i)

    def send(self, i: int, ex: Exec) -> Sequence[tuple[Exec, Outcome]]:
        if ex.stalls:
            if not self.stalled.full:
                self.stalls += 1
                self.stalled.start(i, ex)
                return []
            self.stalls_closed += 1
            ex = replace(ex, stall_s=0.0, shutdown=True)
        return [(ex, run_exec(self.path, ex, self.cfg.timeout))]

    def ended(self, wait: bool) -> Sequence[tuple[int, Exec, Outcome]]:
        return self.stalled.drain() if wait else self.stalled.poll()

    def judge(self, ex: Exec, out: Outcome) -> Violation | None:
        return self.oracle.judge(ex, out, self.cfg.timeout)

    def _finding(self, kind: str, ex: Exec, expected: str, observed: str, i: int,
                 found: float) -> Finding:
        return Finding(kind, ex, expected, observed, self.cfg.seed, i, self.valid, found)

    def gone(self, i: int, item: Exec, previous: Exec | None,
             sent: Sequence[tuple[Exec, Outcome]], found_after_s: float) -> Finding | None:
        """A ``gone`` finding when the daemon stopped accepting connections; a ``hang``
        when it accepts no one for the timeout (its queue of waiting connections full:
        on a loaded machine a busy daemon's queue fills for a moment, then drains)."""
        ex, out = sent[0]
        if out.kind not in ("refused", "closed", "reset") or out.reply is not None:
            return None
        wait = max(PROBE_S, self.cfg.timeout)
        state = listening(self.path, wait)
        if state == "accepts":
            return None
        if state == "busy":
            return self._finding("hang", ex, KINDS["hang"].requirement,
                                 f"{out.describe()}; its queue of waiting connections "
                                 f"stayed full for {wait:g} s: it accepted no one", i,
                                 found_after_s)
        if out.kind != "refused":  # dropped without a reply, then nothing listens: this one
            culprit, at = ex, i
            observed = f"{out.describe()}, then the socket refused connections"
        else:  # refused from the start: what came before did it
            culprit, at = (previous, i - 1) if previous is not None else (ex, i)
            observed = "the socket refused connections after this request"
        return self._finding("gone", culprit, KINDS["gone"].requirement, observed, at,
                             found_after_s)

    def finding(self, i: int, item: Exec, ex: Exec, out: Outcome, v: Violation,
                found_after_s: float) -> Finding:
        return self._finding(v.kind, ex, v.expected, v.observed, i, found_after_s)

    def memory_finding(self, *_: Any) -> None:
        return None

    def example(self, ex: Exec, out: Outcome) -> dict[str, Any]:
        return {"generator": ex.generator, "payload": repr(ex.payload[:120])}

    def can_shrink(self, finding: Finding) -> bool:
        return not finding.exec.stalls  # a stall costs the daemon's read timeout a try

    def _reproduces(self, kind: str, ex: Exec) -> Outcome | None:
        out = run_exec(self.path, ex, self.cfg.timeout)
        v = self.oracle.judge(ex, out, self.cfg.timeout)
        return out if v is not None and v.kind == kind else None

    def shrink(self, finding: Finding, replays: int, seconds: float) -> None:
        """A simpler delivery that still reproduces: one write, no stalled clients."""
        start = finding.exec
        if self._reproduces(finding.kind, start) is None:
            finding.shrink = {"reproduced": False,
                              "note": "did not reproduce on replay (timing-dependent?); "
                              "saved as found"}
            return
        small, last, info = descend(start, simpler, lambda c: self._reproduces(
            finding.kind, c), Budget(replays, seconds), Exec.key)
        finding.shrink = {"reproduced": True, **info}
        if last is not None:
            finding.exec = replace(small, generator=start.generator)
            v = self.oracle.judge(small, last, self.cfg.timeout)
            finding.observed = v.observed if v is not None else last.describe()

    def stats(self, fuzz_seconds: float) -> dict[str, Any]:
        return {"stalls": self.stalls, "stalls_closed": self.stalls_closed}

    def close(self) -> None:
        self.stalled.close()


def simpler(ex: Exec) -> list[Exec]:
    """Simpler deliveries of the same bytes, boldest first."""
    out = []
    if len(ex.chunks) > 1 or ex.pauses:
        out.append(replace(ex, chunks=(ex.payload,), pauses=()))
    if ex.held:
        out.append(replace(ex, held=()))
        out += [replace(ex, held=(h,)) for h in ex.held] if len(ex.held) > 1 else []
    if ex.shutdown:
        out.append(replace(ex, shutdown=False))
    return out


class NslcdModel:
    """``MODEL``: the nslcd protocol for the fuzz engine."""

    protocol = PROTOCOL
    kinds = KINDS
    options = "pamconform.protocols.nslcd.fuzz_cli"
    module = None
    regressions = None

    def open(self, cfg: FuzzConfig) -> Session:
        return Session(cfg)

    def load_finding(self, data: Any) -> Finding:
        return Finding.from_dict(data)

    def replay(self, finding: Finding, cfg: FuzzConfig) -> Replayed:
        """Send the finding again (logged) and judge it against its own logins."""
        oracle = Oracle(finding.valid)
        log = WireLog()
        path = str(cfg.target.socket)
        out = run_exec(path, finding.exec, cfg.timeout, log=log)
        v = oracle.judge(finding.exec, out, cfg.timeout)
        if finding.kind == "gone":
            alive = not dies(path, PROBE_S)
            text = "the daemon still accepts connections" if alive else (
                f"{out.describe()}, then the socket refused connections")
            return Replayed(not alive, text, None, out, log=log)
        return Replayed(v is not None and v.kind == finding.kind, out.describe(), v, out,
                        log=log)

    def run_note(self, result: Any) -> str:
        s = result.stats
        return (f"seed {result.config.seed}: {result.items} items, {result.execs} connections "
                f"in {result.fuzz_seconds:.1f} s ({result.execs_per_s:.0f}/s; "
                f"{s.get('stalls', 0)} stalls in the background), stopped by "
                f"{result.stopped}")


MODEL: FuzzModel = NslcdModel()


def config(socket: Path | str, credentials: list[tuple[bytes, bytes]], *,
           idle_limit: float = 10.0, stall_slots: int = 4, **engine: Any) -> FuzzConfig:
    """A FuzzConfig for this protocol (``engine``: the engine's knobs)."""
    return FuzzConfig(PROTOCOL, Target(Path(socket), list(credentials), idle_limit,
                                       stall_slots), **engine)
