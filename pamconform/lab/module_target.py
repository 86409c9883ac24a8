"""A PAM module under test: built from source inside a lab container, wired into sshd and su.

The container runs with ``--network none``; logins are driven from inside it (a pty
through :meth:`~pamconform.lab.LabContainer.exec_argv`), so no traffic leaves the
container's own namespace.
"""

from __future__ import annotations

import io
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pamconform import protocols
from pamconform.core import module_args
from pamconform.core.errors import HarnessError, UsageError
from pamconform.drivers.login import LoginResult, Spawner, ssh_login, su_login
from pamconform.lab import LabContainer
from pamconform.lab.images import Progress, quiet

SECURITY_DIR = "/lib/x86_64-linux-gnu/security"
SOCKET = "/run/pam_redirector/socket"
SERVERS = "/opt/pamconform/servers"
SRC = "/opt/target-src"

#: Seconds a login's command may outlive the driver's own timeout inside the container
#: (the driver grades HUNG first; this only reaps what it leaves behind).
LOGIN_SLACK_S = 5.0

#: Logins the lab image knows: auth-server passwords differ from Unix passwords.
AUTH_PASSWORDS = {"alice": "alice-auth-pw", "bob": "bob-auth-pw"}
UNIX_PASSWORDS = {"alice": "unix-alice-pw", "bob": "unix-bob-pw", "mallory": "unix-mallory-pw"}


#: The hang bound's margin over the module's timeout.  The module's own wait ends at its
#: timeout; what the harness adds on top (pamdrive and agent start-up, scheduling on a
#: loaded two-core host) measured 0.004-0.024 s in the lab, so 2 s absorbs a busy machine
#: many times over, yet a module that ignores its timeout still fails.  The e2e cases
#: add the login path's own time to deny (docker exec, ssh, su's FAIL_DELAY: 0.6-1.3 s),
#: measured per run (``pamconform.drivers.login_checks.path_time``).
HANG_MARGIN = 2.0


def default_hang_bound(protocol: str) -> float:
    """The reference module's default ``timeout=`` (``DEFAULT_TIMEOUT`` in its C source and
    README: ``ReferenceModule.default_timeout`` in the protocol's profile) plus HANG_MARGIN
    (12 s for the redirector); the default protocol's for a protocol without one."""
    return reference_module(protocol).default_timeout + HANG_MARGIN


def reference_module(protocol: str = protocols.DEFAULT) -> protocols.ReferenceModule:
    """The protocol's reference module (its profile), else the default protocol's."""
    module = None
    if protocol in protocols.names():
        module = protocols.get(protocol).reference_module
    module = module or protocols.get(protocols.DEFAULT).reference_module
    assert module is not None, "the default protocol has a reference module"
    return module


def uses_lab_socket(protocol: str) -> bool:
    """Does the protocol's module talk to a server at the lab's socket (``{socket}``)?"""
    ref = protocols.get(protocol).reference_module
    return ref is not None and "{socket}" in ref.args


class BuildFailed(UsageError):
    """The module's own build failed (its compiler output is the message)."""


@dataclass
class ModuleSpec:
    """How to build and configure a module: source, build command, .so name, arguments."""

    src: Path
    build: str = "make"
    #: the default protocol's reference module's .so and arguments unless given
    so: str = field(default_factory=lambda: reference_module().so)
    args: str = field(default_factory=lambda: reference_module().args)
    protocol: str = protocols.DEFAULT
    collect_password: bool = False  # stack "auth optional pam_unix.so" first (drop-in style)
    #: how long a transaction may take while the server hangs (None: default_hang_bound)
    hang_bound: float | None = None

    @property
    def bound(self) -> float:
        """The R-M2 hang bound in seconds."""
        return self.hang_bound if self.hang_bound is not None else default_hang_bound(
            self.protocol)

    def validate(self) -> None:
        if not self.src.is_dir():
            raise UsageError(f"{self.src}: not a directory")
        if "/" in self.so or not self.so.endswith(".so"):
            raise UsageError(f"--so {self.so!r}: give the file name of the module, e.g. pam_x.so")
        if uses_lab_socket(self.protocol) and "{socket}" not in self.args:
            raise UsageError("--args must contain {socket}")
        module_args.secrets(self.args)  # set, usable, and kept out of every report


def _tar_dir(src: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path in sorted(src.rglob("*")):
            rel = path.relative_to(src)
            if any(part in (".git", "__pycache__") for part in rel.parts):
                continue
            if path.is_file() and path.suffix in (".so", ".o"):
                continue
            info = tar.gettarinfo(str(path), arcname=str(rel))
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            if info.isreg():
                with open(path, "rb") as fh:
                    tar.addfile(info, fh)
            elif info.isdir():
                tar.addfile(info)
    return buf.getvalue()


@dataclass
class ModuleTarget:
    """A built and installed module in a lab container, with server and login controls."""

    name: str
    box: LabContainer
    spec: ModuleSpec
    login_timeout: float = 20.0
    build_log: str = ""
    lab_checks: dict[str, Any] = field(default_factory=dict)
    server_state: str = "none"
    #: per login path, how long a prompt denial takes (see e2e_checks.denial_time)
    denial_s: dict[str, float] = field(default_factory=dict)
    #: per login path, its R-M2 logins (redirector e2e_steps.hung_login: measured once)
    hung: dict[str, Any] = field(default_factory=dict)

    @property
    def hang_bound(self) -> float:
        return self.spec.bound

    # ---- set-up -------------------------------------------------------------
    def install(self, progress: Progress = quiet) -> None:
        """Copy the source in, build it, install the .so and write the PAM stacks."""
        self.box.run(["mkdir", "-p", SRC], timeout=10).check()
        self.box.container.put_archive(SRC, _tar_dir(self.spec.src))
        progress(f"building {self.spec.src} with {self.spec.build!r}")
        # the build command is the user's shell line, run as given in the source tree
        res = self.box.run(self.spec.build, workdir=SRC, timeout=300)
        self.build_log = (res.out + res.err)[-6000:]
        if not res.ok:
            why = "timed out" if res.timed_out else f"exit {res.exit_code}"
            raise BuildFailed(f"build of {self.spec.src} failed ({why}):\n{self.build_log}")
        listed = self.box.run(["find", SRC, "-name", self.spec.so, "-type", "f"], timeout=20)
        found = next(iter(listed.out.splitlines()), "").strip()
        if not found:
            raise BuildFailed(f"the build did not produce {self.spec.so}:\n{self.build_log}")
        dest = f"{SECURITY_DIR}/{self.spec.so}"
        self.box.run(["install", "-o", "root", "-g", "root", "-m", "0644", found, dest],
                     timeout=20).check()
        self.write_stacks()
        self.check_lab()

    def module_line(self) -> str:
        args = module_args.expand(self.spec.args, SOCKET)
        # arguments the protocol's lab adds unless given (e.g. a short timeout= keeps it fast)
        for extra in str(protocols.get(self.spec.protocol).extra.get("lab_module_args",
                                                                       "")).split():
            if extra.split("=", 1)[0] + "=" not in args:
                args = f"{args} {extra}".strip()
        return f"auth required {self.spec.so} {args}".rstrip()

    def stacks(self) -> dict[str, str]:
        pre = "auth optional pam_unix.so nodelay\n" if self.spec.collect_password else ""
        tail = (
            "account required pam_permit.so\n"
            "session optional pam_permit.so\n"
            "password required pam_deny.so\n"
        )
        head = "# written by pamconform for this run\n"
        # su keeps Debian's pam_rootok line: root may switch users without a password (the
        # cases run su as mallory, for whom it does nothing), as on a real system.
        rootok = "auth sufficient pam_rootok.so\n"
        return {
            "/etc/pam.d/sshd": head + pre + self.module_line() + "\n" + tail,
            "/etc/pam.d/su": head + rootok + pre + self.module_line() + "\n" + tail,
        }

    def write_stacks(self) -> None:
        for path, text in self.stacks().items():
            self.box.put_file(path, text.encode(), mode=0o644)

    def check_lab(self) -> None:
        """testinfra checks of the lab's preconditions; a failure is a harness error."""
        from pamconform.lab.host import lab_host

        host = lab_host(self.box)
        so = host.file(f"{SECURITY_DIR}/{self.spec.so}")
        checks = {
            "module file root-owned, not writable by group/others":
                so.exists and so.user == "root" and not so.mode & 0o022,
            "sshd config valid": host.run("sshd -t").rc == 0,
        }
        for path, text in self.stacks().items():
            checks[f"{path} is the stack this run wrote"] = host.file(path).content_string == text
        self.lab_checks = {k: bool(v) for k, v in checks.items()}
        bad = [k for k, v in self.lab_checks.items() if not v]
        if bad:
            raise HarnessError("lab check failed: " + "; ".join(bad))

    def check_running(self) -> None:
        """testinfra checks once sshd and the reference server run: safe socket, sshd up."""
        from pamconform.lab.host import lab_host

        host = lab_host(self.box)
        sock = host.file(SOCKET)
        sock_dir = host.file(SOCKET.rsplit("/", 1)[0])
        checks = {
            "server socket is a root-owned socket, mode 0600":
                sock.is_socket and sock.user == "root" and sock.mode == 0o600,
            "server socket directory root-owned, mode 0700":
                sock_dir.user == "root" and sock_dir.mode == 0o700,
            "sshd is running": bool(host.process.filter(comm="sshd")),
        }
        self.lab_checks.update({k: bool(v) for k, v in checks.items()})
        bad = [k for k, v in checks.items() if not v]
        if bad:
            raise HarnessError("lab check failed: " + "; ".join(bad))

    def start_sshd(self) -> None:
        res = self.box.run(["pamconform-start-sshd"], timeout=20)
        if not res.ok:
            raise HarnessError(f"sshd did not start: {res.err.strip()}")
        self.wait_sshd()

    def wait_sshd(self, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.box.run("ss -ltn | grep -q ':22 '", timeout=5).ok:
                return
            time.sleep(0.2)
        raise HarnessError("sshd is not listening on port 22")

    def sshd_running(self) -> bool:
        return self.box.run(["pgrep", "-x", "sshd"], timeout=5).ok

    # ---- the server behind the socket ----------------------------------------
    def server(self, state: str) -> None:
        """Put the auth server in a state: reference, down, or scenario:<name>."""
        self.box.run('pkill -f "$1"/ ; sleep 0.1; rm -f "$2"', args=[SERVERS, SOCKET], timeout=10)
        if state == "down":
            self.server_state = state
            return
        if state == "reference":
            res = self.box.run(["pamconform-start-server", SOCKET, "--quiet"], timeout=15)
        elif state.startswith("scenario:"):
            scenario = state.split(":", 1)[1]
            res = self.box.run(
                'setsid nohup python3 "$1/scenario_server.py" "$2" '
                '--control /run/pam_redirector/control --scenario "$3" '
                '>>/var/log/pamconform-scenario.log 2>&1 </dev/null & '
                'for i in $(seq 50); do [ -S "$2" ] && exit 0; sleep 0.1; done; '
                'tail -5 /var/log/pamconform-scenario.log >&2; exit 1',
                args=[SERVERS, SOCKET, scenario], timeout=15)
        else:
            raise ValueError(f"unknown server state {state!r}")
        if not res.ok:
            raise HarnessError(f"server {state} did not start: {res.err.strip()}")
        self.server_state = state

    # ---- logins ----------------------------------------------------------------
    def spawner(self, timeout: float) -> Spawner:
        """Commands in this container on a pty, bounded inside it too (a login's client)."""

        def spawn(cmd: list[str], user: str) -> list[str]:
            return self.box.exec_argv(cmd, user=user, tty=True, timeout=timeout + LOGIN_SLACK_S)

        return spawn

    def ssh(self, user: str, password: str, method: str = "keyboard-interactive",
            timeout: float | None = None) -> LoginResult:
        limit = timeout or self.login_timeout
        return ssh_login(self.spawner(limit), user, password, method=method, timeout=limit)

    def su(self, as_user: str, target_user: str, password: str,
           timeout: float | None = None) -> LoginResult:
        limit = timeout or self.login_timeout
        return su_login(self.spawner(limit), as_user, target_user, password, timeout=limit)

    def log_tail(self, path: str = "/var/log/pamconform-sshd.log", lines: int = 15) -> str:
        return self.box.run(["tail", "-n", str(lines), path], timeout=5).out
