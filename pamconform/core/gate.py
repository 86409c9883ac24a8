"""The machine-wide gate of ``pamconform run --parallel``: what a case needs alone holds
across the processes that check targets side by side.

Inside one target the runner keeps conflicting cases apart (``exclusive=``). When several
``pamconform`` processes run targets at once, each of them sees only its own target, so
the gate adds what must hold across them:

- a ``timing`` case runs with no case of any other process running: its measurement (a
  latency comparison, a hang bound) sees no load of theirs. ``target`` stays what it is,
  the case's own target alone (the token hang case names it: holding the machine for
  it would undo the lanes). A timing case whose measurement is over takes a pass beside
  the others for the rest (:meth:`~pamconform.core.context.CaseContext.measured`);
- ``valgrind`` cases take one of its ``registry.SLOTS`` over all processes (CPU-bound,
  bounded by a multiple of the hang bound), fairly: a process that found none free
  waits in line for the next one (:meth:`Gate._try_slot`);
- setting a target up (a module build, containers starting) counts as a case beside
  the others (:func:`setting_up`); taking it down does not.

It is a set of ``flock(2)`` locks in a private directory that the parent process creates
and names in :data:`ENV` (without it there is no gate: one process already keeps its
cases apart). Every case holds the ``cases`` lock shared while it runs; a timing case
takes it exclusively. A timing case first takes the ``turnstile``, which every other case
passes through, so a stream of short cases cannot starve it. While one long case of
another process runs (nslcd's side-by-side hang cases wait a minute) the turnstile would
hold every process up: so it is held at most :data:`TURNSTILE_HOLD_S` at a time, then let
go as long again. Those hang cases let go of their pass once their logins are armed
(:meth:`~pamconform.core.context.CaseContext.only_waits`): blocked processes load nothing
a timing case could see; one with work again takes a pass first (``works_again``).
All attempts are non-blocking: the runner tries again while other cases run.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pamconform.core import interrupts
from pamconform.core.registry import SLOTS, Case

#: The environment variable naming the gate's directory.
ENV = "PAMCONFORM_LANE_GATE"
#: Resources whose cases run with no case of another process running.
MACHINE_ALONE = frozenset({"timing"})
#: Resources held by at most ``registry.SLOTS[name]`` cases at once across processes.
COUNTED = ("valgrind",)
#: How long a timing case holds the turnstile while others still run, and then lets go.
TURNSTILE_HOLD_S = 10.0
#: How long setting a target up waits for timing cases elsewhere before it goes on.
SETUP_WAIT_S = 300.0


class GateError(OSError):
    """The gate's directory is not a private directory of this user."""


def _try_lock(path: Path, mode: int) -> int | None:
    """A new descriptor of ``path`` locked with ``mode``, or None when it is held."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


@dataclass
class Pass:
    """What one running case holds; :meth:`release` (idempotent) lets the others in."""

    fds: list[int] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def release(self) -> None:
        with self._lock:
            fds, self.fds = self.fds, []
        for fd in fds:
            os.close(fd)  # closing the last descriptor drops its flock

    def adopt(self, other: Pass) -> None:
        """Hold what ``other`` holds too (released with this pass)."""
        with other._lock:
            fds, other.fds = other.fds, []
        with self._lock:
            self.fds += fds


class Gate:
    """The gate in ``directory`` (see the module docstring)."""

    def __init__(self, directory: Path,
                 clock: Callable[[], float] = time.monotonic) -> None:
        st = os.lstat(directory)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or \
                st.st_mode & 0o077:
            raise GateError(f"{directory}: the gate needs a private (0700) directory of "
                            "this user")
        self.directory = directory
        self.clock = clock
        #: the turnstile held by a case that waits to run alone: (its key, the lock's
        #: descriptor, since when)
        self._waiting: tuple[int, int, float] | None = None
        #: a timing case let go of the turnstile: not taken again before this time
        self._pause_until = 0.0
        #: the line of a counted resource this process waits in for a slot: name ->
        #: (the line lock's descriptor, since when); and when it may queue again
        self._in_line: dict[str, tuple[int, float]] = {}
        self._line_pause: dict[str, float] = {}
        #: the counted resources asked for since :meth:`begin_round`
        self._asked: set[str] = set()

    def try_enter(self, key: int, case: Case) -> Pass | None:
        """A pass for ``case`` (``key``: who asks, the same on each try), or None: not now."""
        if not MACHINE_ALONE.isdisjoint(case.exclusive):
            return self._enter_alone(key)
        return self.try_enter_shared([n for n in COUNTED if n in case.exclusive])

    def try_enter_shared(self, counted: list[str] | None = None) -> Pass | None:
        """A pass beside others (and holding a slot of each of ``counted``), or None: not
        now."""
        turnstile = _try_lock(self.directory / "turnstile", fcntl.LOCK_SH)
        if turnstile is None:
            return None
        try:
            held = [_try_lock(self.directory / "cases", fcntl.LOCK_SH)]
            if held[0] is not None:  # a slot taken only to be let go would lose its line
                held += [self._try_slot(name) for name in counted or []]
        finally:
            os.close(turnstile)
        if any(fd is None for fd in held):
            for fd in held:
                if fd is not None:
                    os.close(fd)
            return None
        return Pass([fd for fd in held if fd is not None])

    def _try_slot(self, name: str) -> int | None:
        """One of the ``SLOTS[name]`` locks of ``name`` that is free, held; else None.

        Fair between processes: one that found no free slot waits in the resource's
        line, and while it does no other process takes a slot, so the next one freed
        is its own (one whose cases start one after another is not beaten to every
        slot by one that runs many at once). Held at most :data:`TURNSTILE_HOLD_S` at a
        time, then let go as long again."""
        now = self.clock()
        self._asked.add(name)
        line = self.directory / f"{name}.line"
        if name not in self._in_line:
            passing = _try_lock(line, fcntl.LOCK_SH)
            if passing is None:
                return None  # another process waits for the next slot
            os.close(passing)
        for slot in range(SLOTS.get(name, 1)):
            fd = _try_lock(self.directory / f"{name}.{slot}", fcntl.LOCK_EX)
            if fd is not None:
                self._leave_line(name)
                return fd
        waiting = self._in_line.get(name)
        if waiting is None and now >= self._line_pause.get(name, 0.0):
            queued = _try_lock(line, fcntl.LOCK_EX)
            if queued is not None:
                self._in_line[name] = (queued, now)
        elif waiting is not None and now - waiting[1] >= TURNSTILE_HOLD_S:
            self._leave_line(name)  # no slot freed for long: let the others try too
            self._line_pause[name] = now + TURNSTILE_HOLD_S
        return None

    def begin_round(self) -> None:
        """The runner is about to try its startable cases."""
        self._asked.clear()

    def end_round(self) -> None:
        """It tried them: a line none of them asked a slot of is let go (its case may
        not start for reasons of its own target, and must not keep others waiting)."""
        for name in list(self._in_line):
            if name not in self._asked:
                self._leave_line(name)

    def _leave_line(self, name: str) -> None:
        waiting = self._in_line.pop(name, None)
        if waiting is not None:
            os.close(waiting[0])

    def _enter_alone(self, key: int) -> Pass | None:
        now = self.clock()
        if self._waiting is not None and self._waiting[0] != key:
            self._leave_turnstile()
        if self._waiting is None and now >= self._pause_until:
            turnstile = _try_lock(self.directory / "turnstile", fcntl.LOCK_EX)
            if turnstile is not None:
                self._waiting = (key, turnstile, now)
        cases = _try_lock(self.directory / "cases", fcntl.LOCK_EX)
        if cases is not None:
            self._leave_turnstile()
            return Pass([cases])
        if self._waiting is not None and now - self._waiting[2] >= TURNSTILE_HOLD_S:
            self._leave_turnstile()  # a long case runs elsewhere: let the others go on a while
            self._pause_until = now + TURNSTILE_HOLD_S
        return None

    def withdraw(self) -> None:
        """Give up the turnstile held while waiting to run alone, and any place in a
        slot's line (a stopped run, or a target done)."""
        self._leave_turnstile()
        for name in list(self._in_line):
            self._leave_line(name)

    def _leave_turnstile(self) -> None:
        if self._waiting is not None:
            os.close(self._waiting[1])
            self._waiting = None


def from_env() -> Gate | None:
    """The gate named by :data:`ENV`, or None when this process checks targets alone."""
    where = os.environ.get(ENV)
    return Gate(Path(where)) if where else None


#: How often :func:`wait_shared` tries again.
RETRY_S = 0.2


def wait_shared(counted: list[str] | None = None, *,
                wait_s: float = SETUP_WAIT_S) -> Pass | None:
    """A pass beside others (:meth:`Gate.try_enter_shared`), tried until one is had, at
    most ``wait_s``, or a signal arrives; None then, or when there is no gate."""
    gate = from_env()
    if gate is None:
        return None
    deadline = time.monotonic() + wait_s
    try:
        while (held := gate.try_enter_shared(counted)) is None:
            if time.monotonic() >= deadline or interrupts.received() is not None:
                return None
            time.sleep(RETRY_S)
        return held
    finally:
        gate.withdraw()  # a place in a slot's line must not outlive this gate


#: The pass held while this process sets a target up (see :func:`setting_up`).
_setup: Pass | None = None


@contextlib.contextmanager
def setting_up(wait_s: float = SETUP_WAIT_S) -> Iterator[None]:
    """Hold a pass beside others while a target is set up (a module build, containers
    starting), so a timing case of another process does not run beside that load; the
    runner ends it (:func:`end_setup`) when the target's cases start. Waits at most
    ``wait_s`` for a timing case elsewhere, then goes on without (never a hung run).
    Without a gate, nothing."""
    global _setup
    _setup = wait_shared(wait_s=wait_s)
    try:
        yield
    finally:
        end_setup()


def end_setup() -> None:
    """Let go of the set-up pass, if this process holds one."""
    global _setup
    held, _setup = _setup, None
    if held is not None:
        held.release()
