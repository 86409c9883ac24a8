"""The direct libpam driver: pamdrive attempts in batches, scenarios on demand.

A long-lived scenario server runs beside the module (controlled over stdin/stdout) at
the module's socket; each case sets a scenario, then runs its attempts through the
batch agent, one agent process per batch.  Where all this runs is the target's
:class:`~pamconform.drivers.direct_runner.DirectRunner`: a lab container
(:class:`~pamconform.drivers.direct_runner.ContainerRunner`, the default) or the host,
as the invoking user (:class:`~pamconform.drivers.host_runner.HostRunner`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pamconform.core import module_args
from pamconform.core.outcome import Fail, Skip
from pamconform.drivers.agent import attempt_limit, run_batch, valgrind_limits
from pamconform.drivers.direct_runner import ContainerRunner, DirectRunner
from pamconform.drivers.lanes import Lanes
from pamconform.lab.module_target import AUTH_PASSWORDS, SOCKET, ModuleTarget
from pamconform.lab.scenario_control import ScenarioProcess

#: The lab's helper module that moves pamdrive's --authtok into PAM_AUTHTOK.
AUTHTOK_MODULE = "pam_pamdrive_authtok.so"
SYSLOG_SINK = "/var/log/pamconform-syslog.log"

_SINK = r"""
import os, socket, sys
path, out = "/dev/log", sys.argv[1]
try:
    os.unlink(path)
except FileNotFoundError:
    pass
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
os.chmod(path, 0o666)
with open(out, "ab", buffering=0) as f:
    while True:
        f.write(s.recv(65536) + b"\n")
"""


@dataclass
class Attempt:
    """One pamdrive transaction as the agent reported it."""

    raw: dict[str, Any]

    @property
    def status(self) -> str:
        return str(self.raw.get("status"))

    @property
    def steps(self) -> list[dict[str, Any]]:
        result = self.raw.get("result") or {}
        return list(result.get("steps", []))

    @property
    def auth(self) -> str:
        """The name of pam_authenticate's return code, or the status when it never returned."""
        for step in self.steps:
            if step["step"] == "authenticate":
                return str(step["name"])
        return self.status.upper()

    @property
    def prompts(self) -> list[dict[str, Any]]:
        return list((self.raw.get("result") or {}).get("prompts", []))

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list((self.raw.get("result") or {}).get("messages", []))

    @property
    def wall_s(self) -> float:
        return float(self.raw.get("wall_ms", 0)) / 1000

    @property
    def valgrind(self) -> dict[str, Any]:
        return dict(self.raw.get("valgrind") or {})

    @property
    def fail_delay_s(self) -> float:
        """The longest delay a module asked for after a failure (pam_fail_delay): pamdrive
        records it instead of sleeping, so the wall time does not hold it."""
        return float((self.raw.get("result") or {}).get("fail_delay_us", 0)) / 1e6

    def summary(self) -> str:
        delay = f" (asked for a {self.fail_delay_s:.1f} s fail delay, not slept)" \
            if self.fail_delay_s else ""
        return (f"{self.status}: pam_authenticate -> {self.auth} in "
                f"{self.wall_s * 1000:.0f} ms{delay}")


@dataclass
class DirectDriver:
    """Runs pamdrive attempts against a ModuleTarget's module, with scenario control."""

    target: ModuleTarget
    hang_bound: float = 10.0
    scenario_proc: ScenarioProcess | None = None
    planted: ScenarioProcess | None = None
    services: set[str] = field(default_factory=set)
    #: where it runs (default: the target's lab container)
    runner: DirectRunner | None = None
    #: the text of each service file written, checked by the runner before an attempt
    service_texts: dict[str, str] = field(default_factory=dict)
    #: cases that do not hold the lab's server run in lanes of their own (drivers/lanes.py)
    lanes: Lanes = field(default_factory=Lanes, repr=False)

    def __post_init__(self) -> None:
        if self.runner is None:
            self.runner = ContainerRunner(self.target)

    @property
    def host(self) -> DirectRunner:
        """The runner (typed)."""
        assert self.runner is not None
        return self.runner

    def path(self, lab_path: str) -> str:
        """Where the lab path ``lab_path`` lives for this driver (cases name lab paths)."""
        return self.host.path(lab_path)

    @property
    def socket(self) -> str:
        """The module's socket, where the scenario server listens (the lane's, in one)."""
        lane = self.lanes.current
        return self.path(lane.socket if lane else SOCKET)

    # ---- services ---------------------------------------------------------------
    def service(self, name: str, *, args: str | None = None, authtok_first: bool = False,
                socket: str = SOCKET) -> str:
        """Write /etc/pam.d/<name> with the module line (``args`` overrides the template)."""
        line = f"auth required {self.module_args(args, socket)}"
        pre = (f"auth optional {self.host.module_ref(AUTHTOK_MODULE)}\n" if authtok_first
               else "")
        text = f"# pamconform direct driver\n{pre}{line}\naccount required pam_permit.so\n"
        return self.install_service(name, text)

    def module_args(self, args: str | None = None, socket: str = SOCKET) -> str:
        """The module and its arguments for a service line (``args`` overrides the
        template; ``socket`` is a lab path)."""
        spec = self.target.spec
        if socket == SOCKET and (lane := self.lanes.current) is not None:
            socket = lane.socket
        template = spec.args if args is None else args
        module = self.host.module_ref(spec.so)
        return f"{module} {module_args.expand(template, self.path(socket))}".rstrip()

    def install_service(self, name: str, text: str) -> str:
        """Write the service file ``name`` where the runner's libpam reads it (in a lane,
        the lane's name for it, which is returned)."""
        if (lane := self.lanes.current) is not None:
            name = lane.service(name)
            lane.installed.add(name)
        self.host.put_service(name, text)
        self.services.add(name)
        self.service_texts[name] = text
        return name

    # ---- the scenario server -----------------------------------------------------
    def scenario(self, name: str, **args: Any) -> ScenarioProcess:
        """Make sure the scenario server owns the socket, and set its scenario."""
        lane = self.lanes.current
        if lane is not None:
            mine = self.lanes.server(lane, self.host)
            mine.set(name, **args)
            mine.log()
            return mine
        proc = self.scenario_proc
        if proc is None or proc.proc.poll() is not None or self.target.server_state != "direct":
            self.stop_scenarios(lanes=False)
            self.host.free_socket()
            # lives until stop_scenarios() closes its stdin; each exchange has a timeout
            proc = self.scenario_proc = ScenarioProcess(
                self.host.scenario_argv(self.socket, mode="0600"))
            self.target.server_state = "direct"
        proc.set(name, **args)
        proc.log()  # start each case with an empty record
        return proc

    def plant(self, path: str, *, user: str = "mallory", mode: str = "0666",
              scenario: str = "grant") -> ScenarioProcess:
        """A second scenario server at ``path``, run as ``user`` in a directory it owns."""
        here = self.path(path)
        self.host.prepare_plant(here.rsplit("/", 1)[0], user)
        if self.planted is not None:
            self.planted.stop()
        self.planted = ScenarioProcess(
            self.host.scenario_argv(here, mode=mode, scenario=scenario, user=user))
        self.planted.log()
        return self.planted

    def stop_scenarios(self, *, lanes: bool = True) -> None:
        """Stop the scenario servers (and, unless told not to, the lanes')."""
        if lanes:
            self.lanes.stop()
        for proc in (self.scenario_proc, self.planted):
            if proc is not None:
                proc.stop()
        self.scenario_proc = self.planted = None

    # ---- attempts ----------------------------------------------------------------
    def request(
        self,
        service: str,
        *,
        user: str = "alice",
        passwords: list[str] | None = None,
        authtok: str | None = None,
        flags: str | None = None,
        conv_fail: bool = False,
        steps: str | None = None,
        valgrind: bool = False,
    ) -> dict[str, Any]:
        argv = ["--service", service, "--user", user]
        pw = [AUTH_PASSWORDS.get(user, "x")] if passwords is None else passwords
        for p in pw:
            argv += ["--password", p]
        if authtok is not None:
            argv += ["--authtok", authtok]
        if flags:
            argv += ["--flags", flags]
        if conv_fail:
            argv.append("--conv-fail")
        if steps:
            argv += ["--steps", steps]
        if valgrind and not self.host.has_valgrind:
            raise Skip("valgrind is not installed (memcheck needs it)")
        self.host.check_service(self.target.spec.so, self.service_texts.get(service, ""))
        timeout = self.hang_bound * (6 if valgrind else 1)
        return {"argv": argv, "timeout": timeout, "valgrind": valgrind}

    def run(self, requests: list[dict[str, Any]], jobs: int | None = None) -> list[Attempt]:
        """Run requests as one agent batch in the container (``jobs`` in parallel)."""
        extra = self.host.attempt_args()
        # valgrind's limits here, for every request (memcheck repeats scale the timeout)
        reqs = [valgrind_limits(dict(renamed, id=i, argv=[*renamed["argv"], *extra]))
                for i, renamed in enumerate(map(self.lanes.rename, requests))]
        budget = sum(attempt_limit(r) for r in reqs) + 30
        exec_fn, argv = self.host.agent(jobs)
        results = run_batch(exec_fn, reqs, budget, agent_argv=argv)
        return [Attempt(r) for r in results]

    def one(self, service: str, **kwargs: Any) -> Attempt:
        return self.run([self.request(service, **kwargs)])[0]

    # ---- syslog ------------------------------------------------------------------
    def start_syslog_sink(self) -> None:
        """A /dev/log listener writing every message to SYSLOG_SINK (no syslogd in the lab)."""
        self.host.lab_only("the module logs through syslog(3) to /dev/log, which only root "
                           "can listen on")
        box = self.target.box
        box.run(f": > {SYSLOG_SINK}", timeout=5)
        box.start_daemon(["python3", "-c", _SINK, SYSLOG_SINK], log_path=None)
        box.wait_for(["test", "-S", "/dev/log"], timeout=10)

    def syslog(self) -> str:
        return self.target.box.run(["cat", SYSLOG_SINK], timeout=5).out


def driver(target: ModuleTarget) -> DirectDriver:
    """The target's direct driver, created once and kept on the target."""
    existing = getattr(target, "_direct", None)
    if existing is None:
        existing = DirectDriver(target, hang_bound=target.hang_bound,
                                runner=getattr(target, "runner", None))
        target._direct = existing  # type: ignore[attr-defined]
    return existing


def expect_ran(attempt: Attempt, what: str, bound: float) -> None:
    """The transaction ended on its own, in time, and the process survived (no hang, no
    crash, no exit): the R-M2/R-M3 shape of every protocol's module suite."""
    if attempt.status == "hung":
        raise Fail(f"{what} to return within {bound:.1f} s", f"still running after "
                   f"{attempt.wall_s:.1f} s, then killed: hung (no timeout in the module?)")
    if attempt.status == "crashed":
        raise Fail(f"{what} not to crash the application",
                   f"pamdrive died of signal {attempt.raw.get('signal')}")
    if attempt.status == "exited":
        raise Fail(f"{what} not to end the application",
                   f"the module called exit() (exit code {attempt.raw.get('exit_code')})")
    if attempt.status != "ran":
        raise RuntimeError(f"driver error: {attempt.raw.get('stderr', '')[-300:]}")
