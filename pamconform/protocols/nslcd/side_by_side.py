"""Daemon behaviours played side by side, for cases that each wait out the module's bound.

pam_ldap's socket is compiled in, so the lab has one scenario server and cases that set
its scenario run one at a time. The N-M2 hangs each wait out pam_ldap's 60 s read
timeout; one at a time they cost four minutes. The scenario server picks a connection's
scenario when it accepts it, so the logins are *armed in turn*: set behaviour 1, start
its login, wait until the server has accepted exactly one new connection, then set
behaviour 2, and so on; then all of them wait out the bound together.

A batch counts only if it is exactly what the one-at-a-time runs would have been:

* each login's window (from arming it to the next arming) saw exactly one new
  connection, and no connection came after the last window;
* those connections come from as many different processes (``peer_pid``) as there are
  logins, so none is a second connection of an earlier login;
* each was played with the behaviour armed in its window (the server's own record).

Anything else (a module that connects twice, late, or not within :data:`ARM_S`; a
signal) and the batch is thrown away: each case then plays its own behaviour alone
(:func:`play_alone`); the evidence says which way it ran.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pamconform.core import interrupts
from pamconform.lab.scenario_control import ScenarioProcess

#: How long a login may take to connect once armed; a slower one ends the batch.
ARM_S = 5.0
#: How often the server's record is read while arming.
POLL_S = 0.05

#: (name, scenario, its args, what the daemon does)
Behaviour = tuple[str, str, dict[str, Any], str]


@dataclass
class Played:
    """One behaviour's login, the bytes its daemon sent, and how it was run."""

    #: what the behaviour's login returned (a direct Attempt, or a LoginResult)
    attempt: Any
    sent_hex: list[str]
    how: str
    #: what the login raised instead (raised again in the case that owns it)
    error: BaseException | None = None


@dataclass
class _Started:
    name: str
    #: the server's own words for what it plays (its reply to ``set``)
    armed: tuple[Any, Any]
    thread: threading.Thread
    out: dict[str, Any] = field(default_factory=dict)
    conns: list[int] = field(default_factory=list)

    def played(self, record: dict[str, Any]) -> bool:
        return (record.get("scenario"), record.get("args")) == self.armed


class _Record:
    """The server's connection records since a starting point (later ones only)."""

    def __init__(self, proc: ScenarioProcess) -> None:
        self.proc = proc
        self.by_conn: dict[int, dict[str, Any]] = {}
        before = proc.log()  # also accepts what waited in the backlog
        self.base = max((int(r["conn"]) for r in before), default=0)

    def take(self, wait: float = 0.0) -> None:
        for rec in self.proc.log(wait=wait):
            if int(rec["conn"]) > self.base:
                self.by_conn[int(rec["conn"])] = rec

    def sent_hex(self, conns: list[int]) -> list[str]:
        return [str(self.by_conn[c].get("sent_hex", ""))[:160] for c in conns]


def play_side_by_side(proc: ScenarioProcess, behaviours: Sequence[Behaviour],
                      attempt: Callable[[str], Any], budget: float,
                      armed: Callable[[], None] | None = None) -> dict[str, Played] | None:
    """Play ``behaviours`` (name, scenario, args, what) at once, armed in turn; None if the
    batch does not count (module docstring), and then each is played alone.
    ``attempt(name)`` runs behaviour ``name``'s login, which ends within ``budget``
    seconds (its own bound; one still running after the arming and that is a harness
    error of that behaviour). ``armed`` is called once every login has connected, when
    what is left is waiting for them."""
    record = _Record(proc)
    started: list[_Started] = []
    deadline = time.monotonic() + budget + len(behaviours) * ARM_S
    clean = True
    try:
        for name, scenario, args, _ in behaviours:
            if interrupts.received() is not None:
                clean = False
                break
            reply = proc.set(scenario, **args)
            run = _start(name, (reply.get("scenario"), reply.get("args")), attempt)
            started.append(run)
            if not _arm(record, run, started):
                clean = False
                break
        if clean and armed is not None:
            armed()
    finally:
        for run in started:
            run.thread.join(max(0.0, deadline - time.monotonic()))
            if run.thread.is_alive():
                run.out.setdefault("error", TimeoutError(
                    f"the login for {run.name} did not end within {budget:.0f} s"))
    record.take(wait=2.0)
    owned = [c for run in started for c in run.conns]
    pids = {record.by_conn[c].get("peer_pid") for c in owned}
    if not (clean and len(owned) == len(behaviours) == len(record.by_conn) == len(pids)
            and all(run.played(record.by_conn[c]) for run in started for c in run.conns)):
        return None
    how = f"side by side with {len(behaviours) - 1} other behaviours (armed in turn)"
    return {run.name: Played(run.out.get("attempt"), record.sent_hex(run.conns), how,
                             run.out.get("error"))
            for run in started}


def _arm(record: _Record, run: _Started, started: list[_Started]) -> bool:
    """Wait until ``run``'s login has made exactly one new connection; False if it made
    none within ARM_S, or more than one appeared."""
    owned = {c for other in started for c in other.conns}
    limit = time.monotonic() + ARM_S
    while True:
        record.take()
        new = sorted(c for c in record.by_conn if c not in owned)
        if new:
            time.sleep(POLL_S)  # a second connection right behind it is not its own
            record.take()
            new = sorted(c for c in record.by_conn if c not in owned)
            run.conns = new
            return len(new) == 1
        if not run.thread.is_alive() or time.monotonic() > limit:
            return False
        time.sleep(POLL_S)


def _start(name: str, armed: tuple[Any, Any], attempt: Callable[[str], Any]) -> _Started:
    out: dict[str, Any] = {}

    def body() -> None:
        try:
            out["attempt"] = attempt(name)
        except BaseException as exc:  # raised again in the case that owns it
            out["error"] = exc

    run = _Started(name, armed, threading.Thread(target=body, daemon=True,
                                                    name=f"side-by-side-{name}"), out)
    run.thread.start()
    return run


def play_alone(proc: ScenarioProcess, behaviour: Behaviour,
               attempt: Callable[[str], Any]) -> Played:
    """Play one behaviour with nothing beside it (after a side-by-side run did not count)."""
    name, scenario, args, _ = behaviour
    proc.set(scenario, **args)
    record = _Record(proc)
    done = attempt(name)
    record.take(wait=1.0)
    return Played(done, record.sent_hex(sorted(record.by_conn)),
                  "alone (the side-by-side run did not count: a connection outside its "
                  "own behaviour, or a login slow to connect)")
