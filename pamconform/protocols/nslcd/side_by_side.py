"""Daemon behaviours played side by side, for cases that each wait out the module's bound.

pam_ldap's socket is compiled in, so the lab has one scenario server and cases that set
its scenario run one at a time. The N-M2 hangs each wait out pam_ldap's 60 s read
timeout; one at a time they cost three minutes. The scenario server picks a connection's
scenario when it accepts it, so the attempts are *armed in turn*: set behaviour 1, start
its attempt, wait until the server has accepted its connection, then set behaviour 2,
and so on; then all of them wait out the bound together.

A batch counts only if it is exactly what the one-at-a-time runs would have been: every
connection the server accepted was made while its own behaviour was armed, and was
played with that behaviour. Anything else (a module that connects twice, or late) and the
batch is thrown away: each case then plays its own behaviour alone (:func:`play_alone`);
the evidence says which way it ran.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pamconform.core.errors import HarnessError
from pamconform.lab.scenario_control import ScenarioProcess

#: How long arming waits for an attempt's connection; after that the attempt is waited
#: out before the next behaviour is armed (so a late connection still gets its own).
ARM_S = 10.0
#: Extra time a started attempt may take beyond the pamdrive batch's own budget.
JOIN_MARGIN_S = 60.0

Behaviour = tuple[str, str, dict[str, Any], str]


@dataclass
class Played:
    """One behaviour's attempt, the bytes its daemon sent, and how it was run."""

    #: what the behaviour's login returned (a direct Attempt, or a LoginResult)
    attempt: Any
    sent_hex: list[str]
    how: str


@dataclass
class _Started:
    name: str
    #: the server's own words for what it plays (its reply to ``set``)
    armed: tuple[Any, Any]
    thread: threading.Thread
    out: dict[str, Any] = field(default_factory=dict)

    def played(self, record: dict[str, Any]) -> bool:
        return (record.get("scenario"), record.get("args")) == self.armed


def play_side_by_side(proc: ScenarioProcess, behaviours: Sequence[Behaviour],
                      attempt: Callable[[str], Any], budget: float) -> dict[str, Played] | None:
    """Play ``behaviours`` (name, scenario, args, what) at once, armed in turn; None if the
    server's record shows any connection outside its own behaviour (then play each one
    alone). ``attempt(name)`` runs behaviour ``name``'s login; ``budget`` bounds one."""
    records: dict[int, dict[str, Any]] = {}
    owner: dict[int, _Started] = {}
    started: list[_Started] = []

    def take(wait: float = 0.0) -> None:
        for rec in proc.log(wait=wait):
            records[int(rec["conn"])] = rec

    take()
    for name, scenario, args, _ in behaviours:
        reply = proc.set(scenario, **args)
        run = _start(name, (reply.get("scenario"), reply.get("args")), attempt)
        started.append(run)
        deadline = time.monotonic() + ARM_S
        while True:
            take()
            new = [c for c in records if c not in owner]
            if new or not run.thread.is_alive() or time.monotonic() > deadline:
                if not new:  # ended, or slow: let it finish under its own behaviour
                    _join(run, budget)
                    take()
                    new = [c for c in records if c not in owner]
                owner.update({c: run for c in new})
                break
            time.sleep(0.05)
    for run in started:
        _join(run, budget)
    take(wait=2.0)
    if not all(c in owner and owner[c].played(rec) for c, rec in records.items()):
        return None
    how = f"side by side with {len(behaviours) - 1} other behaviours (armed in turn)"
    return {run.name: Played(run.out["attempt"],
                             [str(records[c].get("sent_hex", ""))[:160]
                              for c in sorted(owner) if owner[c] is run], how)
            for run in started}


def _start(name: str, armed: tuple[Any, Any], attempt: Callable[[str], Any]) -> _Started:
    out: dict[str, Any] = {}

    def body() -> None:
        try:
            out["attempt"] = attempt(name)
        except BaseException as exc:  # re-raised in the case's thread by _join
            out["error"] = exc

    run = _Started(name, armed, threading.Thread(target=body, daemon=True,
                                                    name=f"side-by-side-{name}"), out)
    run.thread.start()
    return run


def _join(run: _Started, budget: float) -> None:
    run.thread.join(budget + JOIN_MARGIN_S)
    if run.thread.is_alive():
        raise HarnessError(f"the attempt for {run.name} did not end within "
                           f"{budget + JOIN_MARGIN_S:.0f} s")
    if "error" in run.out:
        raise run.out["error"]


def play_alone(proc: ScenarioProcess, behaviour: Behaviour,
               attempt: Callable[[str], Any]) -> Played:
    """Play one behaviour with nothing beside it (after a side-by-side run was not clean)."""
    name, scenario, args, _ = behaviour
    proc.set(scenario, **args)
    proc.log()
    done = attempt(name)
    sent = [str(r.get("sent_hex", ""))[:160] for r in proc.log(wait=1)]
    return Played(done, sent, "alone (the side-by-side run was not clean: a connection "
                  "outside its own behaviour)")
