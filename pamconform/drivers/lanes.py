"""Lanes: a direct-driver case's own scenario server, socket and services.

The lab has one module socket and one scenario server behind it, so cases that set a
scenario there run one at a time. A case that does not hold the lab's server
(``exclusive="lab-server"``) gets a lane instead: a scenario server of its own at
``/run/pc-lane-N/socket`` (root's, mode 0700 directory, mode 0600 socket, as the lab's
socket), the module's ``{socket}`` pointing there, and its service files named
``NAME-lN``. Lanes are handed out per case thread and taken back when the case ends; a
lane's server lives on for the next case, which sets its own scenario and clears the
record. In the lab the lanes' servers run the scenario server through a link
(``/opt/pamconform/lanes``), so a case that stops the lab's servers by their path
(``pkill -f /opt/pamconform/servers/``) leaves the lanes alone.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pamconform.drivers.direct_runner import LAB_SERVERS, ContainerRunner, DirectRunner
from pamconform.lab.scenario_control import ScenarioProcess

#: The lab's scenario server as the lanes start it (a link to the servers' directory).
LANE_SERVERS = "/opt/pamconform/lanes"
_SCRIPT = f"{LAB_SERVERS}/scenario_server.py"


@dataclass
class Lane:
    """One lane: its number, and its scenario server once started."""

    n: int
    proc: ScenarioProcess | None = None
    #: the service files this lane wrote (their lane names)
    installed: set[str] = field(default_factory=set)

    @property
    def directory(self) -> str:
        return f"/run/pc-lane-{self.n}"

    @property
    def socket(self) -> str:
        """The lane's socket (a lab path)."""
        return f"{self.directory}/socket"

    def service(self, name: str) -> str:
        """The lane's name for service ``name``."""
        return name if name.endswith(f"-l{self.n}") else f"{name}-l{self.n}"


class Lanes:
    """The lanes of one direct driver, handed to case threads."""

    def __init__(self) -> None:
        self._all: list[Lane] = []
        self._free: list[Lane] = []
        self._lock = threading.Lock()
        self._local = threading.local()
        self._linked = False

    @property
    def current(self) -> Lane | None:
        """The calling thread's lane, if it holds one."""
        lane: Lane | None = getattr(self._local, "lane", None)
        return lane

    def enter(self) -> Callable[[], None]:
        """Give the calling thread a lane; returns what gives it back (idempotent)."""
        if self.current is not None:
            return lambda: None
        with self._lock:
            if self._free:
                lane = self._free.pop()
            else:
                lane = Lane(len(self._all) + 1)
                self._all.append(lane)
        self._local.lane = lane

        def leave() -> None:
            self._local.lane = None
            with self._lock:
                self._free.append(lane)

        return leave

    def server(self, lane: Lane, runner: DirectRunner) -> ScenarioProcess:
        """The lane's scenario server, started (again) if it is not running."""
        if lane.proc is not None and lane.proc.proc.poll() is None:
            return lane.proc
        if lane.proc is not None:
            lane.proc.stop()
        runner.run(["mkdir", "-p", "-m", "0700", runner.path(lane.directory)],
                   timeout=10).check()
        argv = runner.scenario_argv(runner.path(lane.socket), mode="0600")
        if isinstance(runner, ContainerRunner):
            self._link(runner)
            argv = [f"{LANE_SERVERS}/scenario_server.py" if a == _SCRIPT else a for a in argv]
        lane.proc = ScenarioProcess(argv)
        return lane.proc

    def _link(self, runner: ContainerRunner) -> None:
        with self._lock:
            if not self._linked:
                runner.run(["ln", "-sfn", LAB_SERVERS, LANE_SERVERS], timeout=10).check()
                self._linked = True

    def rename(self, request: dict[str, Any]) -> dict[str, Any]:
        """``request`` with its ``--service`` the calling thread's lane's name for it."""
        lane = self.current
        argv = list(request.get("argv", []))
        if lane is None or "--service" not in argv:
            return request
        at = argv.index("--service") + 1
        if lane.service(argv[at]) not in lane.installed:
            return request
        argv[at] = lane.service(argv[at])
        return dict(request, argv=argv)

    def stop(self) -> None:
        """Stop every lane's server (the end of the run)."""
        with self._lock:
            lanes = list(self._all)
        for lane in lanes:
            if lane.proc is not None:
                lane.proc.stop()
                lane.proc = None
