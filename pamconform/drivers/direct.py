"""The direct libpam driver in the lab: pamdrive attempts in batches, scenarios on demand.

A long-lived scenario server runs in the container (:meth:`LabContainer.exec_argv`,
controlled over stdin/stdout) at the module's socket; each case sets a scenario, then
runs its attempts through the batch agent — one :meth:`LabContainer.run` per batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pamconform.core.outcome import Fail
from pamconform.drivers.agent import CONTAINER_AGENT_ARGV, container_exec, run_batch
from pamconform.lab.module_target import AUTH_PASSWORDS, SERVERS, SOCKET, ModuleTarget
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

    def summary(self) -> str:
        return f"{self.status}: pam_authenticate -> {self.auth} in {self.wall_s * 1000:.0f} ms"


@dataclass
class DirectDriver:
    """Runs pamdrive attempts against a ModuleTarget's module, with scenario control."""

    target: ModuleTarget
    hang_bound: float = 10.0
    scenario_proc: ScenarioProcess | None = None
    planted: ScenarioProcess | None = None
    services: set[str] = field(default_factory=set)

    # ---- services ---------------------------------------------------------------
    def service(self, name: str, *, args: str | None = None, authtok_first: bool = False,
                socket: str = SOCKET) -> str:
        """Write /etc/pam.d/<name> with the module line (``args`` overrides the template)."""
        spec = self.target.spec
        template = spec.args if args is None else args
        line = f"auth required {spec.so} {template.replace('{socket}', socket)}".rstrip()
        pre = f"auth optional {AUTHTOK_MODULE}\n" if authtok_first else ""
        text = f"# pamconform direct driver\n{pre}{line}\naccount required pam_permit.so\n"
        self.target.box.put_file(f"/etc/pam.d/{name}", text.encode(), mode=0o644)
        self.services.add(name)
        return name

    # ---- the scenario server -----------------------------------------------------
    def scenario(self, name: str, **args: Any) -> ScenarioProcess:
        """Make sure the scenario server owns the socket, and set its scenario."""
        proc = self.scenario_proc
        if proc is None or proc.proc.poll() is not None or self.target.server_state != "direct":
            self.stop_scenarios()
            self.target.server("down")
            # lives until stop_scenarios() closes its stdin; each exchange has a timeout
            argv = self.target.box.exec_argv(
                ["python3", f"{SERVERS}/scenario_server.py", SOCKET, "--control", "-",
                 "--mode", "0600"], timeout=None)
            proc = self.scenario_proc = ScenarioProcess(argv)
            self.target.server_state = "direct"
        proc.set(name, **args)
        proc.log()  # start each case with an empty record
        return proc

    def plant(self, path: str, *, user: str = "mallory", mode: str = "0666",
              scenario: str = "grant") -> ScenarioProcess:
        """A second scenario server at ``path``, run as ``user`` in a directory it owns."""
        directory = path.rsplit("/", 1)[0]
        box = self.target.box
        box.run('rm -rf "$1"; install -d -o "$2" -m 0755 "$1"', args=[directory, user],
                timeout=10).check()
        if self.planted is not None:
            self.planted.stop()
        argv = box.exec_argv(["python3", f"{SERVERS}/scenario_server.py", path, "--control",
                              "-", "--mode", mode, "--scenario", scenario],
                             user=user, timeout=None)
        self.planted = ScenarioProcess(argv)
        self.planted.log()
        return self.planted

    def stop_scenarios(self) -> None:
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
        timeout = self.hang_bound * (6 if valgrind else 1)
        return {"argv": argv, "timeout": timeout, "valgrind": valgrind}

    def run(self, requests: list[dict[str, Any]], jobs: int | None = None) -> list[Attempt]:
        """Run requests as one agent batch in the container (``jobs`` in parallel)."""
        reqs = [dict(r, id=i) for i, r in enumerate(requests)]
        budget = sum(r["timeout"] for r in reqs) + 30
        argv = CONTAINER_AGENT_ARGV + (["--jobs", str(jobs)] if jobs else [])
        results = run_batch(container_exec(self.target.box), reqs, budget, agent_argv=argv)
        return [Attempt(r) for r in results]

    def one(self, service: str, **kwargs: Any) -> Attempt:
        return self.run([self.request(service, **kwargs)])[0]

    # ---- syslog ------------------------------------------------------------------
    def start_syslog_sink(self) -> None:
        """A /dev/log listener writing every message to SYSLOG_SINK (no syslogd in the lab)."""
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
        existing = DirectDriver(target, hang_bound=target.hang_bound)
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
