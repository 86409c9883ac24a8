"""Where the direct driver runs: the interface, and its lab-container side.

The direct driver (:mod:`pamconform.drivers.direct`) writes PAM service files, starts
scenario servers, prepares paths and runs pamdrive batches.  A :class:`DirectRunner`
does those things somewhere: :class:`ContainerRunner` in a lab container (root, the
real ``/etc/pam.d``), :class:`~pamconform.drivers.host_runner.HostRunner` on the host
as the invoking user (a private directory, no root, no Docker).
Cases name lab paths (``/run/...``); :meth:`DirectRunner.path` says where such a path
lives on the runner.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from pamconform.drivers.agent import CONTAINER_AGENT_ARGV, ExecFn, container_exec
from pamconform.lab.containers import CommandResult

#: Where the lab image holds the scenario server.
LAB_SERVERS = "/opt/pamconform/servers"


class DirectRunner(Protocol):
    """What the direct driver needs from the place it runs in (every call is bounded)."""

    #: valgrind is there (memcheck cases are SKIPPED without it)
    has_valgrind: bool

    def path(self, lab_path: str) -> str:
        """Where the lab path ``lab_path`` (absolute) lives here."""

    def module_ref(self, so: str) -> str:
        """How a service file names the module ``so`` (a file name) here."""

    def put_service(self, name: str, text: str) -> None:
        """Write the PAM service file ``name``."""

    def run(self, cmd: Sequence[str] | str, *, timeout: float,
            args: Sequence[str] = ()) -> CommandResult:
        """Run a command (a string runs under ``sh -c`` with ``args`` as ``"$1"`` ...)."""

    def scenario_argv(self, socket: str, *, mode: str, scenario: str | None = None,
                      user: str | None = None) -> list[str]:
        """The host argv of a scenario server on ``socket`` (a path here) controlled over
        stdin/stdout, run as ``user`` (None: the runner's own server user)."""

    def prepare_plant(self, directory: str, user: str) -> None:
        """A fresh directory (a path here) owned by ``user``, for a planted socket."""

    def free_socket(self) -> None:
        """Stop whatever else serves the module's socket (before a scenario server takes it)."""

    def start_daemon(self, argv: list[str]) -> Any:
        """Start ``argv`` detached (output discarded); returns a handle for stop_daemon."""

    def stop_daemon(self, handle: Any, match: str) -> None:
        """Stop a daemon started here (``match``: a string only its command line holds)."""

    def wait_for(self, check: Sequence[str] | str, *, timeout: float) -> bool:
        """Poll ``check`` until it exits 0 (False at ``timeout``)."""

    def agent(self, jobs: int | None) -> tuple[ExecFn, list[str]]:
        """How to run the batch agent here: the exec function and the agent's argv."""

    def attempt_args(self) -> list[str]:
        """Arguments each pamdrive attempt gets on top of the request's."""

    def check_service(self, so: str, text: str) -> None:
        """Raise Skip when an attempt through this service text cannot be graded here."""

    def lab_only(self, what: str) -> None:
        """Raise Skip (``what`` needs the lab) unless this is the lab."""


class ContainerRunner:
    """The direct driver's runner in a lab container (the module target's ``box``)."""

    has_valgrind = True  # the lab image installs it

    def __init__(self, target: Any) -> None:
        self.target = target

    @property
    def box(self) -> Any:
        return self.target.box

    def path(self, lab_path: str) -> str:
        return lab_path

    def module_ref(self, so: str) -> str:
        return so

    def put_service(self, name: str, text: str) -> None:
        self.box.put_file(f"/etc/pam.d/{name}", text.encode(), mode=0o644)

    def run(self, cmd: Sequence[str] | str, *, timeout: float,
            args: Sequence[str] = ()) -> CommandResult:
        result: CommandResult = self.box.run(cmd, timeout=timeout, args=args)
        return result

    def scenario_argv(self, socket: str, *, mode: str, scenario: str | None = None,
                      user: str | None = None) -> list[str]:
        argv = ["python3", f"{LAB_SERVERS}/scenario_server.py", socket, "--control", "-",
                "--mode", mode] + (["--scenario", scenario] if scenario else [])
        # lives until its stdin is closed; each exchange has a timeout
        return list(self.box.exec_argv(argv, user=user, timeout=None))

    def prepare_plant(self, directory: str, user: str) -> None:
        self.box.run('rm -rf "$1"; install -d -o "$2" -m 0755 "$1"', args=[directory, user],
                     timeout=10).check()

    def free_socket(self) -> None:
        self.target.server("down")

    def start_daemon(self, argv: list[str]) -> Any:
        return self.box.start_daemon(argv, log_path=None)

    def stop_daemon(self, handle: Any, match: str) -> None:
        self.box.run(["pkill", "-f", match], timeout=5)

    def wait_for(self, check: Sequence[str] | str, *, timeout: float) -> bool:
        return bool(self.box.wait_for(check, timeout=timeout))

    def agent(self, jobs: int | None) -> tuple[ExecFn, list[str]]:
        argv = CONTAINER_AGENT_ARGV + (["--jobs", str(jobs)] if jobs else [])
        return container_exec(self.box), argv

    def attempt_args(self) -> list[str]:
        return []

    def check_service(self, so: str, text: str) -> None:
        return None

    def lab_only(self, what: str) -> None:
        return None
