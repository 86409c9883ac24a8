"""The root-less module tier: build on the host, run the direct cases as the invoking user.

``pamconform module SRC --no-lab``: the module is built with the user's build command
in a copy of SRC inside a private directory (0700), pamdrive and its authtok helper are
compiled there with ``cc``, and the direct driver runs through a
:class:`~pamconform.drivers.host_runner.HostRunner`, all as the invoking user: no
root, no Docker.  Whatever needs the lab (sshd and su logins, other users, syslog on
``/dev/log``) is SKIPPED with its reason, never dropped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from pamconform import protocols
from pamconform.core import interrupts
from pamconform.core.errors import UsageError
from pamconform.core.outcome import Skip
from pamconform.core.registry import Case
from pamconform.core.runner import Progress, TargetResult, run_target
from pamconform.drivers.agent import agent_dir, kill_and_collect
from pamconform.drivers.host_runner import LAB_ONLY, HostRunner
from pamconform.lab.module_target import BuildFailed, ModuleSpec

#: Seconds the user's build and each compile of pamdrive may take.
BUILD_TIMEOUT_S = 300.0
COMPILE_TIMEOUT_S = 60.0
#: The profile's ``extra`` key: module arguments a root-less run adds unless the key is
#: given (``{uid}``: the invoking user's uid), e.g. the uid the socket must belong to.
ROOTLESS_ARGS = "rootless_module_args"

Say = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


def rootless_args(spec: ModuleSpec) -> str:
    """``spec.args`` with the protocol's root-less arguments added unless already given
    (none as root: the module's own defaults already trust root's server)."""
    args = spec.args.replace("{uid}", str(os.getuid()))
    if os.getuid() == 0:
        return args
    extra = str(protocols.get(spec.protocol).extra.get(ROOTLESS_ARGS, ""))
    for word in extra.replace("{uid}", str(os.getuid())).split():
        if word.split("=", 1)[0] + "=" not in args:
            args = f"{args} {word}".strip()
    return args


def check_tools(compiler: str = "cc") -> None:
    """UsageError (one line) when the compiler is missing (pamdrive's build then says
    what else is: the PAM headers, or a libpam older than 1.4 without
    ``pam_start_confdir()``)."""
    if shutil.which(compiler) is None:
        raise UsageError(f"--no-lab needs a C compiler ({compiler}) and the PAM headers "
                         "(Debian: build-essential libpam0g-dev)")


def _sh(argv: list[str] | str, cwd: Path, timeout: float) -> tuple[bool, str]:
    """Run a build step as the invoking user; (ok, output tail). On a timeout, Ctrl-C or
    SIGTERM its whole process group is stopped: a build's children (make's jobs, a
    ``sleep``) do not outlive it."""
    proc = subprocess.Popen(argv, cwd=cwd, shell=isinstance(argv, str), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        out, err = kill_and_collect(proc)
        return False, f"timed out after {timeout:.0f} s\n" + (out + err).decode(
            errors="replace")[-6000:]
    except BaseException:
        kill_and_collect(proc)
        raise
    return proc.returncode == 0, (out + err).decode(errors="replace")[-6000:]


def build_module(spec: ModuleSpec, root: Path, say: Say = _quiet) -> tuple[Path, str]:
    """Copy SRC into ``root/src``, run the build there; (the built .so, the build log)."""
    src = root / "src"
    shutil.copytree(spec.src, src, symlinks=True,
                    ignore=shutil.ignore_patterns(".git", "__pycache__", "*.o", "*.so"))
    say(f"building {spec.src} with {spec.build!r} (on this host, as uid {os.getuid()})")
    # the build command is the user's shell line, run as given in the copy of the tree
    ok, log = _sh(spec.build, src, BUILD_TIMEOUT_S)
    if not ok:
        raise BuildFailed(f"build of {spec.src} failed:\n{log}")
    found = sorted(p for p in src.rglob(spec.so) if p.is_file())
    if not found:
        raise BuildFailed(f"the build did not produce {spec.so}:\n{log}")
    return found[0].resolve(), log


def build_pamdrive(root: Path, compiler: str = "cc") -> tuple[Path, Path]:
    """pamdrive and pam_pamdrive_authtok.so compiled into ``root/agent``."""
    out = root / "agent"
    out.mkdir(mode=0o700)
    source = agent_dir() / "pamdrive.c"
    pamdrive, helper = out / "pamdrive", out / "pam_pamdrive_authtok.so"
    for argv in ([compiler, "-O2", "-g", "-o", str(pamdrive), str(source), "-lpam"],
                 [compiler, "-O2", "-g", "-fPIC", "-shared", "-DPAMDRIVE_AUTHTOK_MODULE",
                  "-o", str(helper), str(source), "-lpam"]):
        ok, log = _sh(argv, out, COMPILE_TIMEOUT_S)
        if not ok:
            raise UsageError(f"--no-lab: compiling pamdrive failed (are the PAM headers "
                             f"installed, Debian: libpam0g-dev, and is libpam 1.4 or later, "
                             f"with pam_start_confdir?): {log.strip()[-500:]}")
    return pamdrive, helper


@dataclass
class HostModuleTarget:
    """A module built on the host, driven by pamdrive as the invoking user (no sshd, no su,
    no root)."""

    name: str
    spec: ModuleSpec
    runner: HostRunner
    build_log: str = ""
    server_state: str = "none"
    lab_checks: dict[str, Any] = field(default_factory=dict)

    @property
    def hang_bound(self) -> float:
        return self.spec.bound

    # The lab's login path: every case that reaches for it is SKIPPED with the reason.
    @property
    def box(self) -> Any:
        raise Skip(LAB_ONLY + "it runs commands in the lab container")

    def _logins(self, *_: Any, **__: Any) -> Any:
        raise Skip(LAB_ONLY + "real sshd and su logins (root, other users)")

    ssh = su = server = sshd_running = log_tail = start_sshd = _logins

    @property
    def denial_s(self) -> Any:
        """What the lab's login paths measured (R-M2): none here."""
        raise Skip(LAB_ONLY + "real sshd and su logins (root, other users)")

    hung = denial_s


def trust_probe(target: HostModuleTarget) -> str | None:
    """Does the module talk to a granting server on a socket the invoking user owns?

    None when it does (it grants, or at least sends its request); else why not, for the
    cases it makes ungradable here.
    """
    from pamconform.drivers.direct import driver

    d = driver(cast(Any, target))  # the driver takes any target with spec/hang_bound/runner
    d.scenario("grant")
    module = d.module_args()
    text = (f"auth [success=ok ignore=ignore default=bad] {module}\n"
            "account required pam_permit.so\n")
    attempt = d.one(d.install_service("pc-trust", text), passwords=["pc-trust-probe"])
    log = d.scenario_proc.log(wait=2) if d.scenario_proc else []
    # a module that sent its request trusted the socket, whatever it made of the reply
    # (e.g. a module that never grants): its cases run, and fail as in the lab
    if attempt.auth == "PAM_SUCCESS" or any(r.get("received_hex") for r in log):
        return None
    return (f"the module refused a granting server on a socket owned by the invoking user "
            f"(uid {os.getuid()}; trust probe: {attempt.summary()}): it probably accepts only "
            f"a root-owned socket, so here its refusal would hide what the case checks "
            f"(module line: {module})")


@contextmanager
def host_module(spec: ModuleSpec, *, name: str, say: Say = _quiet) -> Iterator[HostModuleTarget]:
    """The module built on the host with its runner; everything removed on exit."""
    check_tools()
    root = Path(tempfile.mkdtemp(prefix="pamconform-nolab-"))
    os.chmod(root, 0o700)
    interrupts.remove_on_quit(root, directory=root)
    runner: HostRunner | None = None
    target: HostModuleTarget | None = None
    try:
        so, log = build_module(spec, root, say)
        pamdrive, helper = build_pamdrive(root)
        host_spec = ModuleSpec(spec.src, spec.build, spec.so, rootless_args(spec),
                               spec.protocol, spec.collect_password, hang_bound=spec.hang_bound)
        runner = HostRunner(root, pamdrive=pamdrive, authtok_module=helper, module=so,
                            so=spec.so)
        target = HostModuleTarget(name, host_spec, runner, build_log=log)
        yield target
    finally:
        if target is not None:
            from pamconform.drivers.direct import driver

            driver(cast(Any, target)).stop_scenarios()
        if runner is not None:
            runner.close()
        shutil.rmtree(root, ignore_errors=True)
        interrupts.removed(root)


def run_host_module(spec: ModuleSpec, cases: list[Case], *, name: str, strict: bool = False,
                    say: Say = _quiet, progress: Progress | None = None) -> TargetResult:
    """Build the module on the host and run the cases as the invoking user (root-less tier)."""
    with host_module(spec, name=name, say=say) as target:
        target.runner.untrusted = trust_probe(target)
        if target.runner.untrusted:
            say(f"trust probe: {target.runner.untrusted}")
        result = run_target(cases, target, kind="module", protocol=spec.protocol,
                            strict=strict, progress=progress)
        result.info.update(
            tier=f"no-lab (uid {os.getuid()})",
            source=str(spec.src), build=spec.build, so=spec.so, args=target.spec.args,
            trusted_own_socket=target.runner.untrusted is None,
            valgrind=target.runner.has_valgrind,
        )
    return result
