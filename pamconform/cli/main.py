"""The ``pamconform`` command.

Exit codes: 0 no case FAILed, 1 a case FAILed, 2 bad usage or input, 3 harness error.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from pamconform import __version__, report
from pamconform.cli.console import Console
from pamconform.cli.preflight import check_logins, check_report_dir, check_token_command
from pamconform.cli.preflight import check_socket as preflight
from pamconform.core import credentials, interrupts, loader
from pamconform.core.context import ServerTarget
from pamconform.core.errors import HarnessError, UsageError
from pamconform.core.interrupts import Interrupted
from pamconform.core.options import SECONDS
from pamconform.core.registry import Case, all_cases
from pamconform.core.runner import TargetResult, exit_code, not_run_target, run_target, select
from pamconform.core.verdicts import STOPPED
from pamconform.lab.localserver import LocalServer, reference_command, reference_server_script
from pamconform.report.baseline import apply_baseline

if TYPE_CHECKING:
    from pamconform.lab.module_target import ModuleSpec as ModuleSpecT

PROTOCOLS = {"redirector": "redirector_server", "transient-token": "token_server"}

#: Modules adding subcommands: each has ``register(subparsers)``, which adds its parser
#: and sets ``func(args, console) -> int`` as the parser's default.
COMMAND_MODULES: list[str] = ["pamconform.cli.diff", "pamconform.cli.bench",
                              "pamconform.cli.fuzz", "pamconform.cli.audit"]

#: The target name of the PAM stack suite (lab libpam against the model).
CHAIN_TARGET = "lab libpam"

#: Credentials of the bundled reference targets (the lab image uses the same).
REFERENCE_CREDENTIALS = [("alice", "alice-auth-pw"), ("bob", "bob-auth-pw")]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="pamconform",
        description="Conformance suite for PAM modules that delegate authentication over "
        "UNIX sockets, and for the auth servers behind them.",
        epilog="exit codes: 0 no case FAILed, 1 a case FAILed, 2 bad usage or input, "
        "3 harness error",
    )
    parser.add_argument("--version", action="version", version=f"pamconform {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    srv = sub.add_parser("server", help="check an auth server listening on a UNIX socket")
    srv.add_argument("socket", nargs="?", type=Path, help="the server's socket path")
    srv.add_argument("--protocol", choices=sorted(PROTOCOLS), default="redirector")
    credentials.add_options(srv)
    srv.add_argument("--name", help="the target's name in the report (default: the socket)")
    tok = srv.add_argument_group("transient-token protocol")
    tok.add_argument("--token-command", metavar="CMD",
                     help="prints a fresh token and leaves its server waiting (run per case)")
    tok.add_argument("--token", help="one token: only the first case that needs one runs")
    tok.add_argument("--expiry", type=SECONDS, metavar="SECONDS",
                     help="the token server's lifetime, for the expiry case")
    _add_run_options(srv)

    mod = sub.add_parser("module", help="build a PAM module from source in the lab and check "
                         "it end to end through sshd and su")
    mod.add_argument("src", type=Path, nargs="?", help="the module's source directory")
    mod.add_argument("--build", default="make", help="build command, run in SRC (default make)")
    mod.add_argument("--so", default="pam_redirector.so", help="the .so the build produces")
    mod.add_argument("--args", default=None,
                     help="PAM module arguments, {socket} is substituted (default {socket} "
                     "for the redirector protocol, none for transient-token)")
    mod.add_argument("--protocol", choices=sorted(PROTOCOLS), default="redirector")
    mod.add_argument("--collect-password", action="store_true",
                     help="stack 'auth optional pam_unix.so' first, for modules that do not "
                     "prompt (the original pam_redirector)")
    mod.add_argument("--login-timeout", type=SECONDS, default=20.0, metavar="SECONDS",
                     help="a login with no verdict by then is HUNG (default 20)")
    _add_hang_bound(mod)
    mod.add_argument("--keep", action="store_true", help="leave the lab container running")
    mod.add_argument("--name", help="the target's name in the report (default: SRC)")
    mod.add_argument("--distro", default="bookworm", metavar="LIST",
                     help="Debian releases to run the lab on, comma-separated: bookworm, "
                     "trixie (default bookworm); one lab each, targets NAME@DISTRO, one report")
    _add_run_options(mod)

    run = sub.add_parser("run", help="the main job: every suite against the bundled "
                         "reference targets, one report")
    run.add_argument("--gallery", action="store_true",
                     help="also run the faulty servers of the test fixtures, to show what "
                     "the suite catches")
    run.add_argument("--no-lab", action="store_true",
                     help="skip the module suites (they need a Docker engine)")
    run.add_argument("--keep", action="store_true", help="leave lab containers running")
    run.add_argument("--distro", default="bookworm", metavar="LIST",
                     help="Debian releases for the module suites, comma-separated: bookworm, "
                     "trixie (default bookworm)")
    _add_hang_bound(run)
    _add_run_options(run)

    ref = sub.add_parser("reference-server", add_help=False,
                         help="the bundled reference redirector server (serve, adduser)")
    ref.add_argument("args", nargs=argparse.REMAINDER)
    srv.set_defaults(func=cmd_server)
    mod.set_defaults(func=cmd_module)
    run.set_defaults(func=cmd_run)
    ref.set_defaults(func=lambda args, console: cmd_reference_server(args))
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def _add_hang_bound(p: argparse.ArgumentParser) -> None:
    p.add_argument("--hang-bound", type=SECONDS, default=None, metavar="SECONDS",
                   help="R-M2: how long a login may take while the server hangs (default: the "
                   "reference module's timeout + 2 s: 12 for the redirector, 7 for the token "
                   "module; e2e logins add the time the login path takes to deny at once)")


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--strict", action="store_true", help="NON-STRICT counts as FAIL")
    p.add_argument("--cases", action="append", default=[], metavar="GLOB",
                   help="run only cases whose id matches (repeatable)")
    p.add_argument("--exclude-cases", action="append", default=[], metavar="GLOB")
    p.add_argument("--list", action="store_true", help="list the selected cases and exit")
    p.add_argument("--timeout", type=SECONDS, default=5.0, metavar="SECONDS",
                   help="how long to wait for each reply (default 5)")
    p.add_argument("--idle-limit", type=SECONDS, default=10.0, metavar="SECONDS",
                   help="how long to wait for the server to drop a silent client (default 10)")
    p.add_argument("--report", type=Path, metavar="DIR",
                   help="report directory (default reports/<timestamp>/, reports/latest)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")


def _cases(protocol: str, args: argparse.Namespace) -> list[Case]:
    loader.load_suite(PROTOCOLS[protocol])
    cases = select(all_cases(protocol=protocol, kind="server"), args.cases, args.exclude_cases)
    if not cases:
        raise UsageError("no case matches --cases/--exclude-cases")
    return cases


def _list(cases: list[Case], console: Console) -> int:
    for c in cases:
        console.line(f"{c.id:<42} {c.rule:<5} {c.severity!s:<6} {c.title}")
    console.line(f"{len(cases)} cases")
    return 0


def _finish(targets: list[TargetResult], args: argparse.Namespace, console: Console,
            run: report.Run) -> int:
    run.targets = targets
    base = Path("reports")
    directory = args.report or report.default_dir(base, run.started)
    with interrupts.shielded():  # a signal now waits until the report is whole
        report.write(run, directory)
        if args.report is None:
            report.point_latest(directory)
        console.line(f"\nreport: {directory}/index.html (index.json, junit.xml)")
    if getattr(args, "baseline", None) is not None:  # --baseline (pamconform.cli.diff)
        return max(exit_code(targets), apply_baseline(args.baseline, run.as_dict(), console))
    return exit_code(targets)


#: A target a run means to check: (name, kind, protocol, cases), for the report of a
#: stopped run (the targets it never reached are listed with every case NOT-RUN).
Planned = tuple[str, str, str, list[Case]]


def _stopped(stopped: Interrupted, results: list[TargetResult], planned: list[Planned],
             args: argparse.Namespace, console: Console, run: report.Run) -> int:
    """Write the report of a run stopped by Ctrl-C or SIGTERM; 130 or 143."""
    if isinstance(stopped.partial, TargetResult):
        results.append(stopped.partial)
        console.summary(stopped.partial)
    done = {t.name for t in results}
    results += [not_run_target(name, cases, stopped, kind=kind, protocol=protocol)
                for name, kind, protocol, cases in planned if name not in done]
    finished = sum(1 for t in results for r in t.results if r.verdict not in STOPPED)
    console.line(f"\npamconform: stopped by {stopped.signame}; {finished} case(s) finished, "
                 "the report lists the rest as INTERRUPTED or NOT-RUN")
    run.interrupted = stopped.signame
    _finish(results, args, console, run)
    return stopped.exit_code


def cmd_server(args: argparse.Namespace, console: Console) -> int:
    cases = _cases(args.protocol, args)
    if args.list:
        return _list(cases, console)
    if args.protocol == "transient-token":
        return _server_token(cases, args, console)
    if args.token_command or args.token:
        raise UsageError("--token-command and --token need --protocol transient-token")
    if args.socket is None:
        raise UsageError("server: the SOCKET argument is required")
    logins = _logins(args, "server")
    check_report_dir(args.report)
    preflight(args.socket, args.timeout)
    check_logins(args.socket, logins, args.timeout)
    run = report.Run(strict=args.strict)
    target = ServerTarget(args.name or str(args.socket), args.socket, args.protocol,
                          logins, args.timeout, args.idle_limit)
    console.line(f"pamconform {__version__}: {len(cases)} {args.protocol} server cases "
                 f"against {target.name}")
    results: list[TargetResult] = []
    try:
        results.append(run_target(cases, target, kind="server", protocol=args.protocol,
                                  strict=args.strict, progress=console.progress))
        console.summary(results[0])
    except Interrupted as stopped:
        planned = [(target.name, "server", args.protocol, cases)]
        return _stopped(stopped, results, planned, args, console, run)
    return _finish(results, args, console, run)


def _logins(args: argparse.Namespace, command: str) -> list[tuple[bytes, bytes]]:
    """The logins given (options, or else the environment variable); at least one."""
    logins = credentials.gather(args)
    if not logins:
        raise UsageError(f"{command}: {credentials.NEED_ONE}")
    return logins


def _module_cases(protocol: str, args: argparse.Namespace) -> list[Case]:
    from pamconform.lab.module_run import module_cases

    return select(module_cases(protocol), args.cases, args.exclude_cases)


def cmd_module(args: argparse.Namespace, console: Console) -> int:
    from pamconform.lab.module_run import (
        distro_differences,
        distro_target_name,
        format_differences,
        parse_distros,
        run_module,
    )
    from pamconform.lab.module_target import ModuleSpec

    distros = parse_distros(args.distro)
    cases = _module_cases(args.protocol, args)
    if not cases:
        raise UsageError("no case matches --cases/--exclude-cases")
    if args.list:
        return _list(cases, console)
    if args.src is None:
        raise UsageError("module: the SRC_DIR argument is required")
    module_args = args.args
    if module_args is None:
        module_args = "{socket}" if args.protocol == "redirector" else ""
    spec = ModuleSpec(args.src, args.build, args.so, module_args, args.protocol,
                      args.collect_password, hang_bound=args.hang_bound)
    spec.validate()
    check_report_dir(args.report)
    run = report.Run(strict=args.strict)
    name = args.name or str(args.src)
    results: list[TargetResult] = []
    planned = [(distro_target_name(name, d, distros), "module", args.protocol, cases)
               for d in distros]
    for distro in distros:
        tname = distro_target_name(name, distro, distros)
        console.line(f"pamconform {__version__}: {len(cases)} {args.protocol} module cases "
                     f"against {tname}")
        try:
            result = run_module(spec, cases, name=tname, distro=distro, keep=args.keep,
                                strict=args.strict, login_timeout=args.login_timeout,
                                say=console.line, progress=console.progress)
            results.append(result)
            console.summary(result)
        except HarnessError as exc:
            if not results:
                raise
            console.line(f"pamconform: the {distro} lab could not run: {exc}")
            _finish(results, args, console, run)
            raise
        except Interrupted as stopped:
            return _stopped(stopped, results, planned, args, console, run)
    if len(distros) > 1:
        for text in format_differences(distro_differences(results), distros):
            console.line(text)
    return _finish(results, args, console, run)


def reference_module_spec(hang_bound: float | None = None) -> ModuleSpecT:
    from pamconform.core import resources
    from pamconform.lab.module_target import ModuleSpec

    return ModuleSpec(resources.modules_dir() / "pam_redirector", "make", "pam_redirector.so",
                      "{socket} timeout=3", "redirector", hang_bound=hang_bound)


def _server_token(cases: list[Case], args: argparse.Namespace, console: Console) -> int:
    from pamconform.protocols.token.target_options import make_target

    if credentials.given(args):
        raise UsageError("--credentials is for the redirector protocol; the token protocol "
                         "needs --token-command CMD or --token TOKEN")
    check_report_dir(args.report)
    target = make_target(args.socket, args.token_command, args.token, args.timeout, args.name,
                         idle_limit=args.idle_limit, expiry=args.expiry)
    run = report.Run(strict=args.strict)
    results: list[TargetResult] = []
    try:
        try:
            check_token_command(target)
            console.line(f"pamconform {__version__}: {len(cases)} transient-token server "
                         f"cases against {target.name}")
            results.append(run_target(cases, target, kind="server", protocol="transient-token",
                                      strict=args.strict, progress=console.progress))
        finally:
            target.close()
        console.summary(results[0])
    except Interrupted as stopped:
        planned = [(target.name, "server", "transient-token", cases)]
        return _stopped(stopped, results, planned, args, console, run)
    return _finish(results, args, console, run)


def cmd_run(args: argparse.Namespace, console: Console) -> int:
    from pamconform.lab import gallery
    from pamconform.lab.module_run import parse_distros

    distros = parse_distros(args.distro)
    cases = _cases("redirector", args)
    mcases = [] if args.no_lab else _module_cases("redirector", args)
    if args.list:
        return _list(cases + mcases, console)
    check_report_dir(args.report)
    run = report.Run(strict=args.strict)
    targets: list[tuple[str, object]] = [("reference-server", reference_command())]
    if args.gallery:
        targets += [(f"faulty:{name}", cmd) for name, cmd in gallery.commands().items()]
    results: list[TargetResult] = []
    try:
        pairs = [(u.encode(), p.encode()) for u, p in REFERENCE_CREDENTIALS]
        for name, command in targets:
            console.line(f"== {name}: {len(cases)} redirector server cases")
            with LocalServer(command, REFERENCE_CREDENTIALS, name=name) as server:  # type: ignore[arg-type]
                target = ServerTarget(name, server.socket, "redirector", pairs,
                                      args.timeout, args.idle_limit)
                result = run_target(cases, target, kind="server", protocol="redirector",
                                    strict=args.strict, progress=console.progress)
            results.append(result)
            console.summary(result)
        results.append(_run_token_reference(args, console))
        if mcases:
            from pamconform.lab.module_run import (
                distro_differences,
                distro_target_name,
                format_differences,
                module_cases,
                run_module,
            )

            ccases = _chain_cases(args)
            if ccases:
                results.append(_run_chain(ccases, args, console))
            tcases = select(module_cases("transient-token"), args.cases, args.exclude_cases)
            for distro in distros:
                mname = distro_target_name("reference-module", distro, distros)
                console.line(f"== {mname}: {len(mcases)} redirector module cases "
                             f"(lab, {distro})")
                try:
                    mresult = run_module(reference_module_spec(args.hang_bound), mcases,
                                         name=mname,
                                         distro=distro, keep=args.keep, strict=args.strict,
                                         say=console.line, progress=console.progress)
                except HarnessError as exc:
                    console.line(f"pamconform: the {distro} lab could not run: {exc}")
                    _finish(results, args, console, run)
                    raise
                results.append(mresult)
                console.summary(mresult)
                if tcases:
                    tname = distro_target_name("reference-token-module", distro, distros)
                    console.line(f"== {tname}: {len(tcases)} transient-token module "
                                 f"cases (lab, {distro})")
                    tresult = run_module(reference_token_module_spec(args.hang_bound), tcases,
                                         name=tname,
                                         distro=distro, keep=args.keep, strict=args.strict,
                                         say=console.line, progress=console.progress)
                    results.append(tresult)
                    console.summary(tresult)
            if len(distros) > 1:
                for text in format_differences(distro_differences(results), distros):
                    console.line(text)
    except Interrupted as stopped:
        planned = _run_plan(args, [name for name, _ in targets], cases, mcases, distros)
        return _stopped(stopped, results, planned, args, console, run)
    return _finish(results, args, console, run)


def _run_plan(args: argparse.Namespace, servers: list[str], cases: list[Case],
              mcases: list[Case], distros: list[str]) -> list[Planned]:
    """The targets of ``pamconform run``, in order (for the report of a stopped run)."""
    from pamconform.lab.module_run import distro_target_name, module_cases

    plan: list[Planned] = [(name, "server", "redirector", cases) for name in servers]
    plan.append(("reference-token-server", "server", "transient-token",
                 _token_server_cases(args)))
    if not mcases:
        return plan
    plan.append((CHAIN_TARGET, "stack", "redirector", _chain_cases(args)))
    tcases = select(module_cases("transient-token"), args.cases, args.exclude_cases)
    for distro in distros:
        plan.append((distro_target_name("reference-module", distro, distros), "module",
                     "redirector", mcases))
        if tcases:
            plan.append((distro_target_name("reference-token-module", distro, distros),
                         "module", "transient-token", tcases))
    return [p for p in plan if p[3]]


def _chain_cases(args: argparse.Namespace) -> list[Case]:
    loader.load_suite("pam_chain")
    return select(all_cases(protocol="redirector", kind="stack"), args.cases,
                  args.exclude_cases)


def _run_chain(cases: list[Case], args: argparse.Namespace, console: Console) -> TargetResult:
    """The PAM stack suite: the model against real libpam in a lab container."""
    from pamconform.lab.stack import StackLab
    from pamconform.lab.stack_cases import StackTarget

    console.line(f"== pam-stacks: {len(cases)} stack cases (lab libpam against the model)")
    with StackLab.open(say=console.line) as lab:
        result = run_target(cases, StackTarget(CHAIN_TARGET, lab), kind="stack",
                            protocol="redirector", strict=args.strict,
                            progress=console.progress)
    console.summary(result)
    return result


def reference_token_module_spec(hang_bound: float | None = None) -> ModuleSpecT:
    from pamconform.core import resources
    from pamconform.lab.module_target import ModuleSpec

    return ModuleSpec(resources.modules_dir() / "pam_transient_token", "make",
                      "pam_transient_token.so", "", "transient-token", hang_bound=hang_bound)


def _token_server_cases(args: argparse.Namespace) -> list[Case]:
    loader.load_suite(PROTOCOLS["transient-token"])
    return select(all_cases(protocol="transient-token", kind="server"), args.cases,
                  args.exclude_cases)


def _run_token_reference(args: argparse.Namespace, console: Console) -> TargetResult:
    """The token server suite against the bundled token server (sockets in a private dir)."""
    import shlex
    import shutil
    import tempfile

    from pamconform.core import resources
    from pamconform.protocols.token.target_options import make_target

    cases = _token_server_cases(args)
    directory = Path(tempfile.mkdtemp(prefix="pc-tok-", dir="/tmp"))
    lifetime = 10
    command = shlex.join([sys.executable, str(resources.servers_dir() / "token_server.py"),
                          "--socket-dir", str(directory), "--timeout", str(lifetime),
                          "--allow-uid", str(os.getuid())])
    try:
        target = make_target(directory, command, None, args.timeout, "reference-token-server",
                             idle_limit=args.idle_limit, expiry=lifetime)
        try:
            console.line(f"== reference-token-server: {len(cases)} transient-token cases")
            result = run_target(cases, target, kind="server", protocol="transient-token",
                                strict=args.strict, progress=console.progress)
        finally:
            target.close()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    console.summary(result)
    return result


def cmd_reference_server(args: argparse.Namespace) -> int:
    return run_reference_server(args.args)


def run_reference_server(argv: list[str]) -> int:
    """The bundled server's own command line, unparsed by ours (so its --help works)."""
    import runpy

    module = runpy.run_path(str(reference_server_script()), run_name="pamconform_reference")
    return int(module["main"](argv))


def _stdout_broken() -> bool:
    """Whether nobody reads our standard output any more (a closed pipe or socket)."""
    import select

    try:
        poll = select.poll()
        poll.register(sys.stdout.fileno(), select.POLLOUT)
        return any(ev & (select.POLLERR | select.POLLHUP) for _, ev in poll.poll(0))
    except (OSError, ValueError):
        return False


def _stdout_gone() -> int:
    """The reader of our output went away (``--list | head``): stop quietly, as a
    command killed by SIGPIPE would (exit 141), without a second error at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 128 + 13


def main(argv: list[str] | None = None) -> int:
    console = Console()
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv[:1] == ["reference-server"]:
            return run_reference_server(argv[1:])
        args = build_parser().parse_args(argv)
        console.quiet = bool(getattr(args, "quiet", False))
        with interrupts.guard():
            return interrupts.leave(int(args.func(args, console)))
    except UsageError as exc:
        print(f"pamconform: error: {exc}", file=sys.stderr)
        return 2
    except HarnessError as exc:
        print(f"pamconform: harness error: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM before any case ran
        stopped = interrupts.as_interrupted(exc)
        print(f"pamconform: interrupted ({stopped.signame})", file=sys.stderr)
        return interrupts.leave(stopped.exit_code, force=stopped is exc)
    except Exception as exc:  # a harness bug: one line, the traceback only on request
        if isinstance(exc, BrokenPipeError) and _stdout_broken():
            return _stdout_gone()
        if os.environ.get("PAMCONFORM_DEBUG"):
            raise
        print(f"pamconform: harness error: {type(exc).__name__}: {exc} "
              "(set PAMCONFORM_DEBUG=1 for the traceback)", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
