"""Replaying a finding against a server: does it still reproduce?"""

from __future__ import annotations

from dataclasses import dataclass

from pamconform.fuzz.memory import MemoryWatch
from pamconform.fuzz.model import Exec, Finding
from pamconform.fuzz.oracle import Oracle, Violation
from pamconform.fuzz.wire import Outcome, probe, replay_logged, run_burst, run_exec
from pamconform.wirelog import WireLog

#: How often a memory finding's request is repeated on replay.
MEMORY_REPEAT = 200


@dataclass
class Replayed:
    reproduces: bool
    outcome: Outcome
    violation: Violation | None
    text: str


def send_setup(path: str, setup: tuple[bytes, ...], timeout: float,
               log: WireLog | None = None) -> None:
    """Send each setup request on its own connection (replies are not judged)."""
    for payload in setup:
        ex = Exec((payload,))
        if log is None:
            run_exec(path, ex, timeout)
        else:
            replay_logged(path, ex, log, timeout)


def attempt(path: str, kind: str, ex: Exec, oracle: Oracle, timeout: float, *,
            setup: tuple[bytes, ...] = (), concurrent: tuple[Exec, ...] = (),
            log: WireLog | None = None, pid: int | None = None,
            memory_limit_mib: float = 512.0) -> Replayed:
    """Send setup, then ``ex`` (with its burst companions), and judge it as ``kind``."""
    send_setup(path, setup, timeout, log)
    if kind == "memory":
        return _memory(path, ex, timeout, pid, memory_limit_mib)
    if concurrent:
        if log is not None:
            log.add(log.new_conn(), "burst", f"{len(concurrent) + 1} connections at once "
                    "(not logged byte by byte)")
        out = run_burst(path, (ex, *concurrent), timeout)[0]
    elif log is not None:
        out = replay_logged(path, ex, log, timeout)
    else:
        out = run_exec(path, ex, timeout)
    if kind == "refused":
        alive = probe(path, min(timeout, 1.0))
        text = "the server still accepts connections" if alive else (
            "the server no longer accepts connections")
        return Replayed(not alive, out, None, f"{out.describe()}; {text}")
    violation = oracle.judge(ex, out)
    hit = violation is not None and violation.kind == kind
    return Replayed(hit, out, violation, out.describe())


def _memory(path: str, ex: Exec, timeout: float, pid: int | None,
            limit_mib: float) -> Replayed:
    if pid is None:
        out = run_exec(path, ex, timeout)
        return Replayed(False, out, None, f"{out.describe()}; give --pid to judge memory")
    watch = MemoryWatch(pid, limit_mib, interval=0.0)
    watch.sample(force=True)
    out = Outcome()
    for _ in range(MEMORY_REPEAT):
        out = run_exec(path, ex, timeout)
        watch.sample(force=True)
    first = watch.samples[0][1] if watch.samples else 0
    last = watch.samples[-1][1] if watch.samples else 0
    grew = (last - first) / 1024
    text = f"RSS {first} -> {last} KiB ({grew:+.1f} MiB) over {MEMORY_REPEAT} requests"
    return Replayed(grew > limit_mib / 4, out, None, text)


def replay(finding: Finding, path: str, oracle: Oracle, timeout: float, *,
           log: WireLog | None = None, pid: int | None = None) -> Replayed:
    """Replay a saved finding as it was saved."""
    return attempt(path, finding.kind, finding.exec, oracle, timeout, setup=finding.setup,
                   concurrent=finding.concurrent, log=log, pid=pid,
                   memory_limit_mib=float(finding.extra.get("memory", {}).get("limit_mib", 512)))
