"""The direct driver's runner on the host: as the invoking user, no root.

Everything lives in one private directory (0700): the lab's paths (``/run/...``) are
mapped under ``<root>/lab``, the PAM service files are in ``<root>/pam.d``, which libpam
reads instead of ``/etc/pam.d`` because pamdrive opens its transactions with
``pam_start_confdir()`` (``--confdir <root>/pam.d``), and the module is named by its
absolute path.  cwrap's pam_wrapper, which did this through ``LD_PRELOAD``, is not used:
it copies the service files to ``/tmp/pam.<letter>`` (world-readable, left behind by every
killed attempt and every valgrind start) and picks that letter without a lock, so
attempts running at once could share or delete each other's copy, and then ended the
process with ``exit(1)`` before the module was loaded (a false "called exit()" FAIL).
Every command has a timeout; every process started here is stopped by its id in
:meth:`HostRunner.close`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pamconform.core.outcome import Skip
from pamconform.drivers.agent import ExecFn, kill_and_collect, local_agent_argv, stop_group
from pamconform.drivers.direct_runner import LAB_SERVERS
from pamconform.lab.containers import CommandResult
from pamconform.lab.scenario_control import scenario_server_script

LAB_ONLY = "needs the lab (root and Docker): "
#: The fallback service libpam reads from the confdir when a service file is missing
#: (without it libpam logs "no default config other" on every transaction).
OTHER_SERVICE = "".join(f"{kind} required pam_deny.so\n"
                        for kind in ("auth", "account", "password", "session"))


class HostRunner:
    """Runs the direct driver's work in ``root`` (a private directory this runner owns)."""

    def __init__(self, root: Path, *, pamdrive: Path, authtok_module: Path,
                 module: Path, so: str) -> None:
        self.root = root
        self.pamdrive = pamdrive
        self.modules = {so: str(module), authtok_module.name: str(authtok_module)}
        self.has_valgrind = shutil.which("valgrind") is not None
        #: why the module cannot be trusted to talk to a socket the invoking user owns
        #: (set by the trust probe; None: it can)
        self.untrusted: str | None = None
        self._daemons: list[subprocess.Popen[bytes]] = []
        self._live: set[subprocess.Popen[bytes]] = set()
        for sub in ("pam.d", "lab"):
            os.makedirs(root / sub, mode=0o700, exist_ok=True)
        self.put_service("other", OTHER_SERVICE)

    # ---- paths and files -----------------------------------------------------------
    def path(self, lab_path: str) -> str:
        if not lab_path.startswith("/"):
            raise ValueError(f"not an absolute lab path: {lab_path!r}")
        return str(self.root / "lab" / lab_path.lstrip("/"))

    def module_ref(self, so: str) -> str:
        return self.modules.get(so, so)

    def put_service(self, name: str, text: str) -> None:
        path = self.root / "pam.d" / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)

    # ---- commands ------------------------------------------------------------------
    def run(self, cmd: Sequence[str] | str, *, timeout: float,
            args: Sequence[str] = ()) -> CommandResult:
        argv = ["sh", "-c", cmd, "sh", *args] if isinstance(cmd, str) else list(cmd)
        start = time.monotonic()
        code, out, err = self._exec(argv, b"", timeout)
        took = time.monotonic() - start
        return CommandResult(code, out, err, took, timed_out=code == -signal.SIGKILL,
                             cmd=tuple(argv))

    def _python(self, argv: list[str]) -> list[str]:
        if argv and argv[0] == "python3":
            argv = [sys.executable, *argv[1:]]
        return [str(scenario_server_script()) if a == f"{LAB_SERVERS}/scenario_server.py"
                else a for a in argv]

    def scenario_argv(self, socket: str, *, mode: str, scenario: str | None = None,
                      user: str | None = None) -> list[str]:
        self._as_self(user)
        os.makedirs(os.path.dirname(socket), mode=0o700, exist_ok=True)
        return self._python(["python3", f"{LAB_SERVERS}/scenario_server.py", socket,
                             "--control", "-", "--mode", mode]
                            + (["--scenario", scenario] if scenario else []))

    def _as_self(self, user: str | None) -> None:
        """The lab's server user (root) is the invoking user here; anyone else needs the lab."""
        if user not in (None, "root"):
            raise Skip(LAB_ONLY + f"it runs a server as another user ({user}); a root-less "
                       "run has only the invoking user")

    def prepare_plant(self, directory: str, user: str) -> None:
        self._as_self(user)
        shutil.rmtree(directory, ignore_errors=True)
        os.makedirs(directory, mode=0o755)
        os.chmod(directory, 0o755)

    def free_socket(self) -> None:
        return None  # only this runner's own scenario servers ever serve it

    def start_daemon(self, argv: list[str]) -> Any:
        proc = subprocess.Popen(self._python(argv), stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        self._daemons.append(proc)
        return proc

    def stop_daemon(self, handle: Any, match: str) -> None:
        _stop(handle)

    def wait_for(self, check: Sequence[str] | str, *, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if self.run(check, timeout=max(1.0, min(5.0, left))).ok:
                return True
            if time.monotonic() + 0.1 > deadline:
                return False
            time.sleep(0.1)

    # ---- attempts ------------------------------------------------------------------
    def agent(self, jobs: int | None) -> tuple[ExecFn, list[str]]:
        return self._exec, local_agent_argv(self.pamdrive, jobs=jobs)

    def attempt_args(self) -> list[str]:
        return ["--confdir", str(self.root / "pam.d")]

    def check_service(self, so: str, text: str) -> None:
        """Skip what a root-less run would grade wrongly.

        - A module line with no path in its arguments: the module may fall back to a
          built-in socket path (under ``/run``), which only the lab can serve.
        - When the trust probe failed (the module refused a granting server on a socket
          the invoking user owns: it accepts only a root-owned one, as in production),
          any attempt that reaches such a socket: here it is refused before anything
          else the case checks happens, so a denial would be a false PASS and a refused
          grant a false FAIL.
        """
        module = self.module_ref(so)
        line = next((ln for ln in text.splitlines() if module in ln.split()), "")
        words = line.split()
        args = words[words.index(module) + 1:] if module in words else []
        if not any("/" in a for a in args):
            raise Skip(LAB_ONLY + "with no socket path in its arguments the module may fall "
                       "back to a built-in path (under /run), which a root-less run cannot "
                       "serve")
        if self.untrusted is None:
            return
        for arg in args:
            path = arg.split("=", 1)[-1]
            with contextlib.suppress(OSError):
                if path.startswith("/") and stat.S_ISSOCK(os.stat(path).st_mode):
                    raise Skip(LAB_ONLY + self.untrusted)

    def lab_only(self, what: str) -> None:
        raise Skip(LAB_ONLY + what)

    def _exec(self, argv: list[str], stdin: bytes, timeout: float) -> tuple[int, bytes, bytes]:
        """As :func:`~pamconform.drivers.agent.local_exec` (on timeout the process group is
        killed), and the process is known to :meth:`close`, which kills it if a Ctrl-C
        left it running in a case's thread."""
        # temporary files (the agent's valgrind XML, ASan logs) go to the private directory,
        # which close() removes whatever became of the process that made them
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True,
                                env={**os.environ, "TMPDIR": str(self.root)})
        self._live.add(proc)
        try:
            out, err = proc.communicate(stdin, timeout=timeout)
        except subprocess.TimeoutExpired:
            out, err = kill_and_collect(proc)
            return -signal.SIGKILL, out, err  # stopped on timeout (see run())
        except BaseException:
            _stop(proc)
            raise
        finally:
            self._live.discard(proc)
        return proc.returncode, out, err

    # ---- clean-up ------------------------------------------------------------------
    def close(self) -> None:
        """Stop the processes started here (by their ids) and remove the private directory."""
        for proc in [*self._daemons, *self._live]:
            _stop(proc)
        self._daemons.clear()
        shutil.rmtree(self.root, ignore_errors=True)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        stop_group(proc)  # the agent then kills the pamdrive runs it started
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)
