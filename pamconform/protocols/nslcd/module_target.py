"""A module target that lives in the lab: a PAM module installed in the nslcd lab container.

The default is Debian's own ``pam_ldap.so`` from the ``libpam-ldapd`` package, as the
package installed it (nothing is built). The module asks whatever answers on
``/run/nslcd/socket`` (compiled in): the real nslcd, nothing (nslcd stopped), nslcd with
its directory stopped, or the scenario server (``servers/scenario_server.py --protocol
nslcd``) standing in for nslcd for one case. The suite drives the module directly
(pamdrive through the batch agent, optionally under valgrind memcheck) and end to end
(sshd and su through pexpect), all inside the container (``--network none``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from pamconform.core.errors import HarnessError
from pamconform.core.redaction import register_login
from pamconform.drivers.agent import (
    CONTAINER_AGENT_ARGV,
    attempt_limit,
    container_exec,
    run_batch,
    valgrind_limits,
)
from pamconform.drivers.direct import Attempt
from pamconform.drivers.login import LoginResult, ssh_login, su_login
from pamconform.lab.containers import LabContainer
from pamconform.lab.module_target import HANG_MARGIN
from pamconform.lab.scenario_control import ScenarioProcess, scenario_server_script

from .lab import CONTROL, SOCKETS, NslcdLab

#: The socket pam_ldap asks (compiled into the module; no option changes it).
SOCKET = SOCKETS["nslcd"]
#: Where the current scenario server is copied (the image's copy may be older).
SCENARIO_SERVER = "/opt/pamconform/nslcd-module/scenario_server.py"
#: The probe stack: the module's failure stays a failure, its PAM_IGNORE lets the
#: optional pam_permit decide (so an IGNORE shows as the grant it becomes there).
PROBE_SERVICE = "pc-ldap-probe"
#: How long pam_ldap may wait for its daemon. pam_ldap(8) has no timeout option;
#: nss-pam-ldapd's client reads with a compiled timeout of 60 s per read (measured in the
#: lab: a daemon that reads the request and stalls is given up after 60.0 s).
PAM_LDAP_TIMEOUT_S = 60.0
#: The local users the end-to-end logins use: sshd and su need them in NSS (the lab has
#: no libnss-ldapd), the password is checked by the module alone.
LOGIN_USER = "alice"
LDAP_LOGIN_USER = "nancy"
#: The password the logins type (the scenario daemon grants or denies whatever it is). No
#: common word in it: the redactor marks fragments of a login's password wherever they show.
PASSWORD = "pc-any-pw-7Kq2"
#: A bound on one login (ssh or su) beyond the module's own wait.
LOGIN_SLACK_S = 15.0
#: Where PAM modules are installed in the lab image.
SECURITY_DIR = "/lib/x86_64-linux-gnu/security"


@dataclass(frozen=True)
class LabModule:
    """Which module is under test: its file in the security directory and its arguments.

    ``timeout_s`` is the longest the module may legitimately wait for its daemon (the
    N-M2 bound is this plus :data:`HANG_MARGIN`).
    """

    so: str = "pam_ldap.so"
    args: str = ""
    label: str = "pam_ldap.so (libpam-ldapd)"
    timeout_s: float = PAM_LDAP_TIMEOUT_S
    #: a module the tests built from source (copied into the security directory)
    built_from: str | None = None

    def line(self, control: str) -> str:
        return f"auth {control} {self.so} {self.args}".rstrip()


@dataclass
class LabModuleTarget:
    """A PAM module in the nslcd lab, the daemon states behind it, and its drivers."""

    lab: NslcdLab
    module: LabModule = field(default_factory=LabModule)
    name: str = "pam_ldap"
    kind: str = "module"
    #: nslcd | down | slapd-down | scenario
    state: str = "nslcd"
    scenario_proc: ScenarioProcess | None = None
    #: behaviours played side by side (module_steps.play_beside), by name, once per run
    beside: dict[str, Any] = field(default_factory=dict)
    #: the second container those are played in (:meth:`twin`), once started
    twin_target: LabModuleTarget | None = None
    _twin_lock: threading.Lock = field(default_factory=threading.Lock, repr=False,
                                       compare=False)

    @property
    def box(self) -> Any:
        return self.lab.box

    @property
    def hang_bound(self) -> float:
        """N-M2: the module's own longest wait plus the harness margin."""
        return self.module.timeout_s + HANG_MARGIN

    # ---- set-up -----------------------------------------------------------------
    def setup(self) -> None:
        """Copy the scenario server in, write the probe and login stacks, add login users."""
        self.box.put_file(SCENARIO_SERVER, scenario_server_script().read_bytes(), 0o755)
        self.box.run('id "$1" >/dev/null 2>&1 || useradd -M -s /bin/sh "$1"',
                     args=[LDAP_LOGIN_USER], timeout=15).check()
        self.write_service(PROBE_SERVICE, self.probe_stack())
        for path, text in self.login_stacks().items():
            self.box.put_file(path, text.encode(), 0o644)
        register_login(LOGIN_USER.encode(), PASSWORD.encode())

    def probe_stack(self) -> str:
        return ("# pamconform nslcd module probe\n"
                f"{self.module.line('[success=ok ignore=ignore default=bad]')}\n"
                "auth optional pam_permit.so\n"
                "account required pam_permit.so\n")

    def login_stacks(self) -> dict[str, str]:
        """sshd and su: the module alone decides authentication."""
        tail = ("account required pam_permit.so\nsession optional pam_permit.so\n"
                "password required pam_deny.so\n")
        head = "# written by pamconform (nslcd module suite)\n"
        line = self.module.line("required") + "\n"
        return {"/etc/pam.d/sshd": head + line + tail,
                "/etc/pam.d/su": head + "auth sufficient pam_rootok.so\n" + line + tail}

    def write_service(self, name: str, text: str) -> str:
        self.box.put_file(f"/etc/pam.d/{name}", text.encode(), 0o644)
        return name

    # ---- the daemon behind the socket ---------------------------------------------
    def daemon(self, state: str) -> None:
        """Put what answers on the socket in ``state`` (see the class attribute)."""
        if state not in ("nslcd", "down", "slapd-down", "scenario"):
            raise ValueError(f"unknown daemon state {state!r}")
        self._stop_scenario()
        self._stop_nslcd()
        if state in ("nslcd", "slapd-down"):
            self.lab.control("start", timeout=60)
            if state == "slapd-down":
                self.lab.control("stop-slapd", timeout=30)
        elif state == "scenario":
            argv = self.box.exec_argv(
                ["python3", SCENARIO_SERVER, SOCKET, "--control", "-", "--protocol", "nslcd",
                 "--mode", "0666"], timeout=None)
            self.scenario_proc = ScenarioProcess(argv)
        self.state = state

    def restore(self) -> None:
        """Back to the real nslcd with its directory up."""
        self.daemon("nslcd")

    def twin_evidence(self) -> dict[str, str]:
        """Where the twin's cases ran, for their evidence."""
        if self.twin_target is None:
            return {}
        return {"container": self.twin_target.box.name,
                "image": str(self.box.container.image.id)[:19],
                "module": f"{SECURITY_DIR}/{self.module.so} (copied from {self.box.name})"}

    def close(self) -> None:
        """Remove the twin container, if one was started (:meth:`twin`), unless the run
        keeps its containers (``--keep``)."""
        twin = self.twin_target
        if twin is not None and not twin.box.keep:
            try:
                twin._stop_scenario()
            finally:
                twin.box.remove()

    def twin(self) -> LabModuleTarget:
        """A second container of this lab's image (``--network none``, same run, removed
        with it) with this container's module file, stacks and login users, for cases
        that wait out the module's bound while this container's cases go on
        (docs/nslcd.md#N-M2). Started on first use; its daemon is the scenario server
        only."""
        with self._twin_lock:
            return self._start_twin()

    def _start_twin(self) -> LabModuleTarget:
        if self.twin_target is None:
            box = LabContainer.start(self.box.client, self.box.container.image.id,
                                     run_id=self.box.run_id, keep=self.box.keep)
            twin = LabModuleTarget(NslcdLab(box), self.module, name=self.name,
                                   state="down")
            try:
                twin.setup()
                # as the lab's control script makes it before it starts nslcd
                box.run('mkdir -p "$(dirname "$1")" && chown nslcd:nslcd "$(dirname "$1")"',
                        args=[SOCKET], timeout=15).check()
                so = f"{SECURITY_DIR}/{self.module.so}"
                box.put_file(so, self.box.get_file(so), 0o644)
            except BaseException:
                box.remove()
                raise
            self.twin_target = twin
        return self.twin_target

    def _stop_scenario(self) -> None:
        if self.scenario_proc is not None:
            self.scenario_proc.stop()
            self.scenario_proc = None

    def _stop_nslcd(self) -> None:
        script = ('pkill -x nslcd; i=0; while pgrep -x nslcd >/dev/null && [ $i -lt 50 ]; do '
                  'sleep 0.1; i=$((i+1)); done; pkill -9 -x nslcd; rm -f "$1"; '
                  f'{CONTROL} status >/dev/null 2>&1 || true')
        self.box.run(script, args=[SOCKET], timeout=15)

    def scenario(self, name: str, **args: Any) -> ScenarioProcess:
        """The scenario server on the socket, playing ``name`` for the next connections."""
        proc = self.scenario_proc
        if self.state != "scenario" or proc is None or proc.proc.poll() is not None:
            self.daemon("scenario")
            proc = self.scenario_proc
        assert proc is not None
        proc.set(name, **args)
        proc.log()  # each case starts with an empty record
        return proc

    # ---- the direct driver --------------------------------------------------------
    def attempts(self, tries: list[tuple[str, str]], *, valgrind: bool = False,
                 service: str = PROBE_SERVICE, jobs: int | None = None) -> list[Attempt]:
        """One pamdrive transaction (authenticate) per (user, password), as one batch."""
        timeout = self.hang_bound * (6 if valgrind else 1)
        reqs = [valgrind_limits({"id": i, "argv": ["--service", service, "--user", user,
                                                   "--password", pw, "--steps", "authenticate"],
                                 "timeout": timeout, "valgrind": valgrind})
                for i, (user, pw) in enumerate(tries)]
        longest = attempt_limit(reqs[0]) if reqs else timeout
        budget = (longest if jobs else longest * len(reqs)) + 30
        argv = CONTAINER_AGENT_ARGV + (["--jobs", str(jobs)] if jobs else [])
        results = run_batch(container_exec(self.box), reqs, budget, agent_argv=argv)
        return [Attempt(r) for r in results]

    def attempt(self, user: str = LOGIN_USER, password: str = PASSWORD, *,
                valgrind: bool = False, service: str = PROBE_SERVICE) -> Attempt:
        return self.attempts([(user, password)], valgrind=valgrind, service=service)[0]

    # ---- end to end -----------------------------------------------------------------
    def start_sshd(self) -> None:
        if self.sshd_running():
            return
        res = self.box.run(["pamconform-start-sshd"], timeout=20)
        if not res.ok:
            raise HarnessError(f"sshd did not start: {res.err.strip()}")
        if not self.box.wait_for("ss -ltn | grep -q ':22 '", timeout=10):
            raise HarnessError("sshd is not listening on port 22")

    def sshd_running(self) -> bool:
        return self.box.run(["pgrep", "-x", "sshd"], timeout=5).ok

    def _spawner(self, limit: float) -> Any:
        def spawn(cmd: list[str], user: str) -> list[str]:
            return list(self.box.exec_argv(cmd, user=user, tty=True, timeout=limit + 5))

        return spawn

    @property
    def login_timeout(self) -> float:
        return self.hang_bound + LOGIN_SLACK_S

    def ssh(self, user: str, password: str, method: str = "keyboard-interactive"
            ) -> LoginResult:
        self.start_sshd()
        limit = self.login_timeout
        return ssh_login(self._spawner(limit), user, password, method=method, timeout=limit)

    def su(self, as_user: str, target_user: str, password: str) -> LoginResult:
        limit = self.login_timeout
        return su_login(self._spawner(limit), as_user, target_user, password, timeout=limit)

    def install_built(self, so_path: str) -> None:
        """Install a module built in the container as :attr:`LabModule.so`."""
        self.box.run(["install", "-o", "root", "-g", "root", "-m", "0644", so_path,
                      f"{SECURITY_DIR}/{self.module.so}"], timeout=20).check()
