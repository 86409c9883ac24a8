"""What a case body gets: the target, the wire log, and ways to grade and add evidence."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pamconform.core.redaction import register_login
from pamconform.core.wirelog import WireLog

#: Added to --idle-limit when a case waits for a drop: the server's idle timer starts
#: when it accepts, a moment after the client connected (a server timing out at exactly
#: --idle-limit drops within it).
IDLE_MARGIN_S = 1.0


@dataclass
class ServerTarget:
    """An auth server under test, reached through its UNIX socket."""

    name: str
    socket: Path
    protocol: str
    credentials: list[tuple[bytes, bytes]]
    timeout: float = 5.0
    #: how long a case waits for the server to drop a silent client (R-S4)
    idle_limit: float = 10.0
    #: the server's process id (``--pid``): its descriptors and memory are evidence
    pid: int | None = None
    #: every login was granted by the up-front check: a later refusal of one is the
    #: server's doing (a lock-out, state), not a wrong password or an inverted polarity
    logins_checked: bool = False

    def __post_init__(self) -> None:
        for user, password in self.credentials:  # never in a report or on the console
            register_login(user, password)

    @property
    def user(self) -> bytes:
        return self.credentials[0][0]

    @property
    def password(self) -> bytes:
        return self.credentials[0][1]


@dataclass
class CaseContext:
    """Handed to every case body; collects evidence and soft verdicts."""

    target: Any
    strict: bool = False
    log: WireLog = field(default_factory=WireLog)
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    non_strict_reasons: list[str] = field(default_factory=list)
    informational_reasons: list[str] = field(default_factory=list)
    #: what the case needs alone (its ``exclusive=``): a driver may give a case that does
    #: not hold a shared resource a private one instead (the direct driver's lanes)
    exclusive: tuple[str, ...] = ()
    #: called when the body has ended, last first (:meth:`on_end`)
    cleanups: list[Callable[[], None]] = field(default_factory=list)
    #: lets go of what the case holds of the machine-wide gate (``run --parallel``);
    #: set by the runner (:meth:`only_waits`)
    release_gate: Callable[[], None] | None = None
    #: takes a pass beside the others again (:meth:`works_again`); set by the runner
    regain_gate: Callable[[], None] | None = None

    def on_end(self, cleanup: Callable[[], None]) -> None:
        """Call ``cleanup`` when the case body has ended (the runner does)."""
        self.cleanups.append(cleanup)

    def end(self) -> BaseException | None:
        """Run the cleanups, last first; the first error they raise, if any."""
        first: BaseException | None = None
        while self.cleanups:
            try:
                self.cleanups.pop()()
            except Exception as exc:  # every cleanup runs; the first error is graded
                first = first or exc
        return first

    def only_waits(self) -> None:
        """From here on the case only waits (its processes blocked on a socket, no CPU):
        under ``run --parallel`` it stops holding the machine-wide gate, so a timing case
        of another target need not wait for it (pamconform.core.gate). What the case
        holds of its own target (``exclusive=``) it keeps."""
        if self.release_gate is not None:
            self.release_gate()

    def works_again(self) -> None:
        """After :meth:`only_waits`, the case has work to do again (a login to run): it
        waits for a pass beside the others, as a case that starts does."""
        if self.regain_gate is not None:
            self.regain_gate()

    def measured(self) -> None:
        """A ``timing`` case's measurement is over: under ``run --parallel`` the rest of it
        (an after-check) runs beside other targets' cases, taking a pass as a case that
        starts does. What it holds of its own target it keeps."""
        self.only_waits()
        self.works_again()

    def note(self, text: str) -> None:
        """Add a line of evidence in prose."""
        self.notes.append(text)

    def non_strict(self, reason: str) -> None:
        """A SHOULD was not met (FAIL under --strict)."""
        self.non_strict_reasons.append(reason)

    def informational(self, reason: str) -> None:
        """Nothing to grade, but worth reporting (e.g. timing figures)."""
        self.informational_reasons.append(reason)

    def evidence(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.notes:
            out["notes"] = list(self.notes)
        if self.log.events:
            out["wire"] = self.log.as_list()
        out.update(self.extra)
        return out
