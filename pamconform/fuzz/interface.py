"""What a protocol gives the one fuzz engine: a :class:`FuzzModel`.

The engine (``pamconform.fuzz.engine``) generates, sends, judges, shrinks and records;
it knows no protocol. A protocol's ``fuzz_model.py`` exports ``MODEL``, an object with
the methods below, named by its profile (``fuzz_model="...fuzz_model:MODEL"``) and found
through :mod:`pamconform.protocols`.

One run opens a :class:`FuzzSession` (the model's state for one target: sockets, minted
tokens, ...). Attempts and outcomes are the model's own types; the engine only passes
them back, reads ``attempt.generator`` and hashes ``item.key()`` into the sequence digest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from pamconform.core.wirelog import WireLog


@dataclass(frozen=True)
class Violation:
    """What the oracle says about one attempt: the finding kind, expected and observed."""

    kind: str
    expected: str
    observed: str


@dataclass(frozen=True)
class Kind:
    """A finding kind and the fuzz case that grades it."""

    case_id: str
    rule: str
    severity: str
    title: str
    requirement: str
    #: whether a finding of this kind is shrunk by replaying it (a hang costs a timeout a try)
    shrink: bool = False
    #: whether a saved finding of this kind may be a regression case of the suite
    regression: bool = False


class KindedFinding:
    """``case_id`` and ``rule`` of a finding, read from its model's table of kinds.

    A model's finding dataclass inherits this and sets ``KINDS`` (a ``ClassVar``).
    """

    KINDS: ClassVar[Mapping[str, Kind]]
    kind: str

    @property
    def case_id(self) -> str:
        return self.KINDS[self.kind].case_id

    @property
    def rule(self) -> str:
        return self.KINDS[self.kind].rule


class StopFuzzing(Exception):
    """Raised by :meth:`FuzzSession.send` when the run cannot go on (e.g. the token
    command failed): the run stops with ``reason`` and its cases grade ERROR."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class Item(Protocol):
    """A generated item (one attempt, or several sent at once)."""

    @property
    def generator(self) -> str: ...

    def key(self) -> bytes: ...


class Finding(Protocol):
    """A recorded violation with what reproduces it; saved as a JSON file."""

    protocol: str
    kind: str
    expected: str
    observed: str
    seed: int
    iteration: int
    found_after_s: float
    shrink: dict[str, Any]

    @property
    def case_id(self) -> str: ...

    @property
    def rule(self) -> str: ...

    @property
    def generator(self) -> str: ...

    def reproducer(self) -> str:
        """What is sent, shown in a message (secrets as markers)."""
        ...

    def short_hash(self) -> str: ...

    def file_name(self) -> str: ...

    def as_dict(self) -> dict[str, Any]: ...

    def save(self, directory: Path) -> Path: ...


@dataclass
class Replayed:
    """A finding sent again and judged as its kind."""

    reproduces: bool
    #: what came back now
    text: str
    violation: Violation | None = None
    outcome: Any = None
    #: why the replay proves nothing (e.g. a known-valid login the server refused)
    problem: str | None = None
    #: what the replay was made of, shown after its header (e.g. the fresh token's head)
    about: str = ""
    log: WireLog = field(default_factory=WireLog)


class FuzzSession(Protocol):
    """A model's state for one run against one target."""

    def generate(self, i: int) -> Item:
        """Item ``i``: a pure function of the seed and ``i``."""
        ...

    def send(self, i: int, item: Any) -> Sequence[tuple[Any, Any]]:
        """Send the item; the (attempt, outcome) pairs that ended (none when the attempt
        was parked, see :meth:`ended`). May raise :class:`StopFuzzing`."""
        ...

    def ended(self, wait: bool) -> Sequence[tuple[int, Any, Any]]:
        """Parked attempts that ended as (item index, attempt, outcome); with ``wait``,
        all of them (each bounded by its own time)."""
        ...

    def judge(self, attempt: Any, outcome: Any) -> Violation | None:
        """The oracle."""
        ...

    def gone(self, i: int, item: Any, previous: Any, sent: Sequence[tuple[Any, Any]],
             found_after_s: float) -> Finding | None:
        """A finding when the target stopped serving (the run stops), else None."""
        ...

    def finding(self, i: int, item: Any, attempt: Any, outcome: Any, violation: Violation,
                found_after_s: float) -> Finding:
        """The finding for the first violation of its kind."""
        ...

    def memory_finding(self, i: int, item: Any, violation: Violation,
                       memory: dict[str, Any], found_after_s: float) -> Finding | None:
        """The finding for unbounded memory growth (None: memory is not judged)."""
        ...

    def example(self, attempt: Any, outcome: Any) -> dict[str, Any]:
        """A further violation of a recorded kind, as evidence (generator, payload...)."""
        ...

    def can_shrink(self, finding: Any) -> bool: ...

    def shrink(self, finding: Any, replays: int, seconds: float) -> None:
        """Replace the finding's reproducer by a smaller one that still reproduces, and
        set ``finding.shrink`` to how it went."""
        ...

    def stats(self, fuzz_seconds: float) -> dict[str, Any]:
        """What the run's summary adds for this protocol (stalls, minting...), once the
        run is over (``fuzz_seconds``: its fuzzing time, shrinking excluded)."""
        ...

    def close(self) -> None: ...


class Regressions(Protocol):
    """How a model's saved findings become regression cases of a suite."""

    @property
    def prefix(self) -> str:
        """Case ids are this prefix and the 8 hex digits of the finding's hash."""
        ...

    def requirement(self, data: dict[str, Any]) -> str:
        """The case's requirement text, from the saved finding (secrets as markers)."""
        ...

    def file_hash(self, data: dict[str, Any]) -> str:
        """A hash of what a saved file sends (for a file whose name holds none)."""
        ...

    def check(self, data: dict[str, Any], name: str, ctx: Any) -> None:
        """The case body: replay the saved finding against ``ctx.target``; raise the
        core's Fail while it reproduces (Skip when it cannot be judged there)."""
        ...


class FuzzModel(Protocol):
    """A protocol's fuzz model (``MODEL`` in ``protocols/<name>/fuzz_model.py``)."""

    @property
    def protocol(self) -> str:
        """The protocol's registry name."""
        ...

    @property
    def kinds(self) -> Mapping[str, Kind]:
        """Finding kind -> its case, in report order."""
        ...

    @property
    def regressions(self) -> Regressions | None:
        """How its findings become regression cases (None: they do not)."""
        ...

    @property
    def options(self) -> str:
        """The module with its ``pamconform fuzz`` options (``add_options(parser,
        replay)``, ``given(args)``, ``target(args, replay)``, ``default_name(args)``,
        ``replay_args(args)``),
        imported only by the command line."""
        ...

    @property
    def module(self) -> str | None:
        """Its module fuzz model for ``fuzz module`` (an import string, see
        :class:`pamconform.fuzz.module_fuzz.ModuleFuzzModel`), or None."""
        ...

    def open(self, cfg: Any) -> FuzzSession:
        """A session for one run (``cfg`` is a :class:`pamconform.fuzz.engine.FuzzConfig`
        whose ``target`` holds the model's own options)."""
        ...

    def load_finding(self, data: Any) -> Finding:
        """A saved finding from its JSON (ValueError, KeyError, TypeError if it is not one)."""
        ...

    def replay(self, finding: Any, cfg: Any) -> Replayed:
        """Send a saved finding again, logged byte by byte, and judge it as its kind."""
        ...

    def run_note(self, result: Any) -> str:
        """The run in one line, for each case's evidence (``result``: a FuzzResult)."""
        ...
