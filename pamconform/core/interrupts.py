"""Ctrl-C and SIGTERM: stop the run, clean up, keep what finished, exit 130 / 143.

While :func:`guard` is active (the ``pamconform`` command), the first SIGINT or SIGTERM
raises :class:`Interrupted` in the main thread: the run unwinds through its ``with``
blocks (lab containers, local servers, temporary directories), and the command writes
the report of what finished, then :func:`leave` exits at once with 130 / 143. Further
signals during that clean-up do not abort it; the third quits at once (the lab's
label-based stale clean-up at the next start removes what is left). :func:`shielded`
defers the first signal over a stretch that must not be cut (writing a report).
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from types import FrameType
from typing import Any

#: Signals handled, and the exit status each leads to (128 + the signal number).
SIGNALS = (signal.SIGINT, signal.SIGTERM)
#: The signal count at which the harness quits without finishing its clean-up.
FORCE_QUIT_AT = 3


class Interrupted(KeyboardInterrupt):
    """The run was stopped by a signal; ``partial`` is the target that was running."""

    def __init__(self, signum: int = signal.SIGINT, partial: Any = None) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.partial = partial

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    @property
    def signame(self) -> str:
        return signal.Signals(self.signum).name


def as_interrupted(exc: KeyboardInterrupt) -> Interrupted:
    """A plain KeyboardInterrupt (no guard installed) counts as SIGINT."""
    return exc if isinstance(exc, Interrupted) else Interrupted(signal.SIGINT)


@dataclass
class _State:
    signum: int | None = None
    count: int = 0
    shield_depth: int = 0
    deferred: bool = False
    active: bool = False


_state = _State()
_Handler = Callable[[int, FrameType | None], Any] | int | None


def guarded() -> bool:
    """Whether a :func:`guard` handles the signals (then nobody else should)."""
    return _state.active


def received() -> int | None:
    """The first signal received under the current guard, if any."""
    return _state.signum


def exit_code(default: int = 130) -> int:
    """128 + the first signal received, else ``default``."""
    return 128 + _state.signum if _state.signum is not None else default


def _say(text: str) -> None:
    with suppress(OSError, ValueError):  # stderr closed: nothing to tell
        os.write(sys.stderr.fileno(), f"pamconform: {text}\n".encode())


#: What a forced quit still removes, by owner (:func:`remove_on_quit`): a process group
#: this process started and a private scratch directory.
_leftovers: dict[object, tuple[int | None, str | None]] = {}


def remove_on_quit(owner: object, *, group: int | None = None,
                   directory: str | os.PathLike[str] | None = None) -> None:
    """If the run is forced to quit (the third signal), kill ``group`` and remove
    ``directory`` of ``owner`` all the same; again for one owner adds to what it had."""
    old_group, old_dir = _leftovers.get(owner, (None, None))
    _leftovers[owner] = (group if group is not None else old_group,
                         os.fspath(directory) if directory is not None else old_dir)


def removed(owner: object) -> None:
    """``owner`` cleaned up itself: nothing of it is left for a forced quit."""
    _leftovers.pop(owner, None)


def _remove_leftovers() -> None:
    for group, directory in list(_leftovers.values()):
        if group is not None:
            with suppress(OSError):
                os.killpg(group, signal.SIGKILL)
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)


def _handler(signum: int, frame: FrameType | None) -> None:
    _state.count += 1
    if _state.signum is None:
        _state.signum = signum
    if _state.count >= FORCE_QUIT_AT:
        _remove_leftovers()
        _say("quitting without finishing clean-up or the report (this run's local servers "
             "and scratch files are removed; lab containers left over are removed by the "
             "next lab run)")
        os._exit(128 + _state.signum)
    if _state.count > 1:
        _say(f"{signal.Signals(signum).name}: still cleaning up and writing the report "
             f"(signal {FORCE_QUIT_AT - _state.count} more time(s) to quit at once)")
        return
    if _state.shield_depth:
        _state.deferred = True
        return
    raise Interrupted(signum)


@contextmanager
def guard() -> Iterator[None]:
    """Install the handlers (main thread only; elsewhere a no-op) and restore them after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    global _state
    saved, _state = _state, _State(active=True)
    previous: dict[int, _Handler] = {sig: signal.signal(sig, _handler) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, prev in previous.items():
            signal.signal(sig, prev if prev is not None else signal.SIG_DFL)
        _state = saved


def leave(code: int, *, force: bool = False) -> int:
    """Return ``code``; but after a signal under the guard (or with ``force``), flush and
    exit the process at once: the run is cleaned up and reported, and neither a thread
    of the stopped case nor a further Ctrl-C may delay or change the exit status."""
    if _state.signum is None and not force:
        return code
    for stream in (sys.stdout, sys.stderr):
        with suppress(Exception):
            stream.flush()
    os._exit(code)


@contextmanager
def shielded() -> Iterator[None]:
    """Defer a first signal until the block is done, then raise :class:`Interrupted`."""
    _state.shield_depth += 1
    try:
        yield
    finally:
        _state.shield_depth -= 1
    if not _state.shield_depth and _state.deferred:
        _state.deferred = False
        assert _state.signum is not None
        raise Interrupted(_state.signum)
