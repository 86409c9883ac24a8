"""Replaying a finding against a server: does it still reproduce?"""

from __future__ import annotations

from pamconform.core.credentials import show_user
from pamconform.core.wirelog import WireLog
from pamconform.fuzz.interface import Replayed
from pamconform.fuzz.memory import MemoryWatch
from pamconform.protocols.redirector.fuzz_items import Exec, Finding
from pamconform.protocols.redirector.fuzz_oracle import Oracle
from pamconform.protocols.redirector.fuzz_wire import (
    Outcome,
    probe,
    replay_logged,
    run_burst,
    run_exec,
)
from pamconform.protocols.redirector.login_check import login_refused

#: How often a memory finding's request is repeated on replay.
MEMORY_REPEAT = 200


def send_setup(path: str, setup: tuple[bytes, ...], timeout: float,
               log: WireLog | None = None) -> str | None:
    """Send each setup request (a valid login) on its own connection; None if each was
    granted, else which login was not and what came back."""
    refused = None
    for payload in setup:
        ex = Exec((payload,))
        out = run_exec(path, ex, timeout) if log is None else replay_logged(path, ex, log, timeout)
        if refused is None and not out.kind.grants:
            refused = f"the server refused {_user_of(payload)}'s login ({out.describe()})"
    return refused


def _user_of(request: bytes) -> str:
    return show_user(request.split(b"\n", 1)[0])


def valid_refused(path: str, valid: tuple[bytes, ...], timeout: float) -> str | None:
    """None if every known-valid request is granted (a few tries each), else which login
    was refused and the reply."""

    for payload in valid:
        user, _, rest = payload.partition(b"\n")
        why = login_refused(path, user, rest.removesuffix(b"\n"), timeout)
        if why is not None:
            return f"the server refused {_user_of(payload)}'s login ({why})"
    return None


def attempt(path: str, kind: str, ex: Exec, oracle: Oracle, timeout: float, *,
            setup: tuple[bytes, ...] = (), concurrent: tuple[Exec, ...] = (),
            log: WireLog | None = None, pid: int | None = None,
            memory_limit_mib: float = 512.0) -> Replayed:
    """Send setup, then ``ex`` (with its burst companions), and judge it as ``kind``."""
    refused = send_setup(path, setup, timeout, log)
    got = _attempt(path, kind, ex, oracle, timeout, concurrent, log, pid, memory_limit_mib)
    got.problem = refused
    return got


def _attempt(path: str, kind: str, ex: Exec, oracle: Oracle, timeout: float,
             concurrent: tuple[Exec, ...], log: WireLog | None, pid: int | None,
             memory_limit_mib: float) -> Replayed:
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
        return Replayed(not alive, f"{out.describe()}; {text}", None, out)
    violation = oracle.judge(ex, out)
    hit = violation is not None and violation.kind == kind
    return Replayed(hit, out.describe(), violation, out)


def _memory(path: str, ex: Exec, timeout: float, pid: int | None,
            limit_mib: float) -> Replayed:
    if pid is None:
        out = run_exec(path, ex, timeout)
        return Replayed(False, f"{out.describe()}; give --pid to judge memory", None, out)
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
    return Replayed(grew > limit_mib / 4, text, None, out)


def replay(finding: Finding, path: str, oracle: Oracle, timeout: float, *,
           log: WireLog | None = None, pid: int | None = None) -> Replayed:
    """Replay a saved finding as it was saved; then check that the run's valid logins are
    still granted (``problem`` says which is not: the replay proves nothing)."""
    got = attempt(path, finding.kind, finding.exec, oracle, timeout, setup=finding.setup,
                  concurrent=finding.concurrent, log=log, pid=pid,
                  memory_limit_mib=float(finding.extra.get("memory", {}).get("limit_mib", 512)))
    if got.problem is None:
        got.problem = valid_refused(path, finding.valid, timeout)
    return got
