"""``pamconform fuzz``: fuzz an auth server, and replay what it found.

    pamconform fuzz server SOCKET [--protocol NAME] --credentials USER:PASSWORD ...
        [--seconds N] [--max-examples N] [--seed N] [--corpus DIR] [--report DIR]
        [--pid PID] [--save-regressions DIR]
    pamconform fuzz server [SOCKET_DIR] --protocol NAME --token-command CMD
        [--seconds N] [--max-examples N] [--seed N] [--report DIR]
    pamconform fuzz replay FINDING.json SOCKET
    pamconform fuzz replay FINDING.json [SOCKET_DIR] --token-command CMD

The protocols, their options and their findings come from the protocol registry (each
protocol's fuzz model); the one engine runs them all.

Exit codes as elsewhere: 0 no FAIL (replay: it no longer reproduces), 1 a FAIL (replay:
it still reproduces), 2 bad usage or input, 3 harness error, 130 / 143 stopped by Ctrl-C /
SIGTERM (the findings so far and the report are written first).
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
from pathlib import Path
from typing import Any

from pamconform import __version__, protocols, report
from pamconform.cli.console import Console
from pamconform.core import credentials, interrupts, jsonfile
from pamconform.core.errors import HarnessError, UsageError
from pamconform.core.options import (
    COUNT,
    COUNT_OR_ZERO,
    PID,
    REPLY_SECONDS,
    SECONDS,
    Count,
    directory,
    target_name,
)
from pamconform.core.preflight import check_report_dir
from pamconform.core.redaction import MissingLogin, Verbatim
from pamconform.core.runner import TargetResult, exit_code
from pamconform.fuzz import regressions
from pamconform.fuzz.engine import (
    MEMORY,
    PROGRESS_SECONDS,
    FuzzConfig,
    Fuzzer,
    fuzzed_protocols,
    model_for,
    module_fuzzed_protocols,
)
from pamconform.fuzz.interface import FuzzModel
from pamconform.fuzz.results import target_result

#: A finding holds at most a 1 MiB payload, hex-encoded, with its setup and evidence.
MAX_FINDING_BYTES = 16 << 20
#: A process id (Linux: at most 2**22).


def _default_protocol(names: list[str]) -> str:
    return protocols.DEFAULT if protocols.DEFAULT in names else names[0]


def _options(model: FuzzModel) -> Any:
    """The model's command-line part (see :attr:`FuzzModel.options`)."""
    return protocols.load(model.options)


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    fuzz = subparsers.add_parser("fuzz", help="fuzz an auth server; replay a finding")
    sub = fuzz.add_subparsers(dest="fuzz_command", required=True, parser_class=type(fuzz))
    names = fuzzed_protocols()
    models = [model_for(name) for name in names]

    srv = sub.add_parser("server", help="fuzz an auth server on a UNIX socket")
    srv.add_argument("socket", type=Path, nargs="?",
                     help="the server's socket path (transient-token: the directory of its "
                     "transient-token-<uid>-<pid> sockets, default /tmp, or a fixed socket)")
    srv.add_argument("--protocol", choices=names, default=_default_protocol(names))
    credentials.add_options(srv)
    srv.add_argument("--seconds", type=SECONDS, default=10.0, metavar="N",
                     help="fuzzing time (default 10; shrinking comes on top)")
    srv.add_argument("--max-examples", type=COUNT, default=1_000_000, metavar="N",
                     help="stop after N generated items (default 1000000)")
    srv.add_argument("--seed", type=int, default=1, metavar="N",
                     help="the seed: same seed, same sequence (default 1)")
    for model in models:
        _options(model).add_options(srv, False)
    srv.add_argument("--report", type=directory, metavar="DIR",
                     help="report directory (default reports/<timestamp>/, reports/latest); "
                     "findings go to DIR/findings/")
    srv.add_argument("--pid", type=PID, metavar="PID",
                     help="the server's pid: watch its VmRSS for unbounded growth")
    srv.add_argument("--memory-limit", type=COUNT, default=512, metavar="MIB",
                     help="RSS growth counted as unbounded when still rising (default 512)")
    srv.add_argument("--timeout", type=REPLY_SECONDS, default=3.0, metavar="SECONDS",
                     help="how long a complete request may wait for its reply (default 3)")
    srv.add_argument("--max-findings", type=COUNT_OR_ZERO, default=0, metavar="N",
                     help="stop after N kinds of finding (default 0: use the whole budget)")
    srv.add_argument("--no-shrink", action="store_true", help="save findings as found")
    srv.add_argument("--shrink-replays", type=COUNT_OR_ZERO, default=150, metavar="N",
                     help="replays allowed to shrink one finding (default 150)")
    srv.add_argument("--save-regressions", type=Path, metavar="DIR",
                     help="also write each finding as a regression case file into DIR "
                     "(e.g. suites/redirector_server/regressions)")
    srv.add_argument("--name", type=target_name,
                     help="the target's name in the report (default: the socket)")
    srv.add_argument("--strict", action="store_true", help="NON-STRICT counts as FAIL")
    srv.add_argument("--quiet", action="store_true",
                     help="no finding or progress lines while running (a progress line "
                     f"comes every {PROGRESS_SECONDS:g} s of fuzzing otherwise)")
    srv.set_defaults(func=cmd_fuzz_server)

    mod = sub.add_parser("module", help="fuzz a PAM module (built in the lab) with a server "
                         "that sends generated replies, timings and disconnects")
    mod.add_argument("src", type=Path, help="the module's source directory")
    module_names = module_fuzzed_protocols()
    mod.add_argument("--protocol", choices=module_names,
                     default=_default_protocol(module_names))
    mod.add_argument("--build", default="make", help="build command (default make)")
    mod.add_argument("--so", default="pam_redirector.so", help="the .so the build produces")
    mod.add_argument("--args", default="{socket} timeout=3",
                     help="module arguments, {socket} substituted (default '{socket} timeout=3')")
    mod.add_argument("--seconds", type=SECONDS, default=30.0, help="time budget (default 30)")
    mod.add_argument("--max-examples", type=COUNT, default=5000)
    mod.add_argument("--seed", type=int, default=1)
    mod.add_argument("--servers", type=Count(maximum=32), default=16,
                     help="scenario servers in parallel, one attempt each per round")
    mod.add_argument("--valgrind-every", type=COUNT_OR_ZERO, default=4, metavar="K",
                     help="every K-th round runs two attempts under valgrind (0: never; "
                     "default 4)")
    mod.add_argument("--hang-bound", type=SECONDS, default=10.0, metavar="SECONDS",
                     help="how long an attempt may take before it is a hang (default 10)")
    mod.add_argument("--report", type=directory, metavar="DIR")
    mod.add_argument("--keep", action="store_true", help="leave the lab container running")
    mod.add_argument("--name", type=target_name)
    mod.set_defaults(func=cmd_fuzz_module)

    rep = sub.add_parser("replay", help="replay a saved finding; exit 1 if it still reproduces")
    rep.add_argument("finding", type=Path, metavar="FINDING.json")
    rep.add_argument("socket", type=Path, nargs="?",
                     help="the server's socket path (transient-token: the sockets' directory)")
    for model in models:
        _options(model).add_options(rep, True)
    credentials.add_options(rep)  # the logins whose passwords the finding refers to
    rep.add_argument("--timeout", type=REPLY_SECONDS, default=3.0, metavar="SECONDS")
    rep.add_argument("--pid", type=PID, metavar="PID", help="for memory findings")
    rep.set_defaults(func=cmd_fuzz_replay)


def _replay_limits(args: argparse.Namespace, kind: str) -> str:
    """The run's options a finding's verdict depends on: the reply timeout (a hang is a
    reply later than it), the server's pid (memory)."""
    out = f" --timeout {args.timeout:g}"
    if kind == MEMORY and getattr(args, "pid", None) is not None:
        out += f" --pid {args.pid}"
    return out


def _foreign(model: FuzzModel, args: argparse.Namespace, command: str) -> None:
    """Options of another protocol (or of features this one lacks): a usage error."""
    mine = set(_options(model).given(args))
    given = [flag for name in fuzzed_protocols() if name != model.protocol
             for flag in _options(model_for(name)).given(args) if flag not in mine]
    if getattr(args, "pid", None) is not None and MEMORY not in model.kinds:
        given.append("--pid")
    if getattr(args, "save_regressions", None) is not None and model.regressions is None:
        given.append("--save-regressions")
    if given:
        raise UsageError(f"{command} --protocol {model.protocol}: {', '.join(given)} "
                         "do not apply to this protocol")


def _check_args(args: argparse.Namespace) -> None:
    """What the option types cannot check; the report directory before the run."""
    check_report_dir(args.report)
    saving = getattr(args, "save_regressions", None)
    if saving is not None:  # found bad after the fuzzing, the findings would be lost
        check_report_dir(saving, option="--save-regressions")
    if args.pid is not None and not os.path.exists(f"/proc/{args.pid}/status"):
        raise UsageError(f"--pid {args.pid}: no such process")


def _fuzz_exit(stopped: str, target: TargetResult, console: Console) -> int:
    """As usual (0, 1, 3), but 130 / 143 when Ctrl-C or SIGTERM stopped the fuzzing."""
    if stopped == "interrupted":
        console.line("pamconform: fuzzing stopped by a signal; the findings so far are saved")
        return interrupts.exit_code()
    return exit_code([target])


def cmd_fuzz_server(args: argparse.Namespace, console: Console) -> int:
    _check_args(args)
    model = model_for(args.protocol)
    _foreign(model, args, "fuzz server")
    options = _options(model)
    cfg = FuzzConfig(model.protocol, options.target(args, False), seed=args.seed,
                     seconds=args.seconds, max_examples=args.max_examples,
                     timeout=args.timeout, pid=args.pid, memory_limit_mib=args.memory_limit,
                     max_findings=args.max_findings, shrink=not args.no_shrink,
                     shrink_replays=args.shrink_replays)
    name = args.name or options.default_name(args)
    console.line(f"pamconform {__version__}: fuzzing {args.protocol} server {name} "
                 f"(seed {args.seed}, {args.seconds:g} s, at most {args.max_examples} items)")
    run = report.Run(strict=args.strict)
    say = (lambda text: None) if args.quiet else (lambda text: console.line(f"  {text}"))
    try:
        result = Fuzzer(cfg, on_event=say, model=model).run()
    except OSError as exc:
        raise HarnessError(f"fuzzing stopped: {exc}") from exc
    directory = args.report or report.default_dir(Path("reports"), run.started)
    files = {}
    for finding in result.findings:
        path = finding.save(directory / "findings")
        files[path.name] = path
    target = target_result(name, result, strict=args.strict, files=files, base=directory,
                           model=model)
    console.summary(target)
    s = result.summary()
    console.line(f"  {s['items']} items, {s['execs']} attempts in {s['fuzz_seconds']} s "
                 f"({s['execs_per_s']}/s), stopped by {s['stopped']}; "
                 f"sequence {s['sequence_sha256'][:16]}")
    for finding in result.findings:
        path = files[finding.file_name()]
        console.line(f"  {finding.kind}: {finding.reproducer()} -> {finding.observed}")
        console.line(f"    replay: pamconform fuzz replay {shlex.quote(str(path))} "
                     f"{options.replay_args(args)}{_replay_limits(args, finding.kind)}")
    run.targets = [target]
    if result.stopped == "interrupted":
        signum = interrupts.received()
        run.interrupted = signal.Signals(signum).name if signum is not None else "SIGINT"
    report.write(run, directory)
    if args.report is None:
        report.point_latest(directory)
    console.line("\nreport: ", Verbatim(f"{directory}/index.html"),
                 " (index.json, junit.xml" + (", findings/)" if files else ")"))
    if args.save_regressions is not None:
        for finding in result.findings:
            saved = regressions.save(finding, args.save_regressions)
            if saved is not None:
                console.line(f"  regression case {regressions.case_id(finding)}: {saved}")
    return _fuzz_exit(result.stopped, target, console)


def _finding_data(path: Path) -> Any:
    """A finding file's JSON (bounded in size and depth); UsageError if unreadable."""
    try:
        return jsonfile.load(path, max_bytes=MAX_FINDING_BYTES)
    except jsonfile.JsonFileError as exc:
        raise UsageError(f"{exc}: not a finding") from None


def cmd_fuzz_replay(args: argparse.Namespace, console: Console) -> int:
    data = _finding_data(args.finding)
    name = data.get("protocol", protocols.DEFAULT) if isinstance(data, dict) else None
    if not isinstance(name, str) or name not in fuzzed_protocols():
        raise UsageError(f"{args.finding}: not a finding of a fuzzed protocol "
                         f"({', '.join(fuzzed_protocols())})")
    model = model_for(name)
    _foreign(model, args, "fuzz replay")
    credentials.gather(args)  # a saved finding names its logins' passwords, never holds them
    try:
        finding = model.load_finding(data)
    except MissingLogin as exc:
        raise UsageError(f"{args.finding}: {exc}: {credentials.NEED_ONE}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UsageError(f"{args.finding}: not a finding: {exc}") from None
    cfg = FuzzConfig(model.protocol, _options(model).target(args, True), timeout=args.timeout,
                     pid=args.pid)
    try:
        got = model.replay(finding, cfg)
    except (HarnessError, OSError) as exc:
        raise HarnessError(f"replay failed: {exc}") from exc
    about = f" {got.about}" if got.about else ""
    console.line(f"replaying {finding.kind} finding {args.finding.name} "
                 f"(seed {finding.seed}, item {finding.iteration}):{about}")
    console.line(got.log.render())
    console.line(f"expected: {finding.expected}")
    console.line(f"then:     {finding.observed}")
    console.line(f"now:      {got.text}")
    if got.problem is not None:
        raise UsageError(f"the setup logins were refused, so the replay proves nothing: "
                         f"{got.problem}")
    console.line("STILL REPRODUCES" if got.reproduces else "no longer reproduces")
    return 1 if got.reproduces else 0


def cmd_fuzz_module(args: argparse.Namespace, console: Console) -> int:
    from pamconform.drivers.direct import driver
    from pamconform.fuzz.module_fuzz import fuzz_module, module_model
    from pamconform.fuzz.module_report import target_result as module_target_result
    from pamconform.lab.module_run import module_lab
    from pamconform.lab.module_target import ModuleSpec

    spec = ModuleSpec(args.src, args.build, args.so, args.args, args.protocol)
    spec.validate()
    check_report_dir(args.report)
    name = args.name or str(args.src)
    console.line(f"pamconform {__version__}: fuzzing module {name} (seed {args.seed}, "
                 f"{args.seconds:g} s, {args.servers} servers, valgrind every "
                 f"{args.valgrind_every} rounds)")
    run = report.Run()
    with module_lab(spec, name=name, keep=args.keep, say=console.line) as target:
        d = driver(target)
        d.hang_bound = args.hang_bound
        result = fuzz_module(d, seed=args.seed, seconds=args.seconds,
                             max_examples=args.max_examples, servers=args.servers,
                             valgrind_every=args.valgrind_every,
                             say=lambda text: console.line(f"  {text}"))
    settings = {"seed": args.seed, "servers": args.servers,
                "valgrind_every": args.valgrind_every}
    target_res = module_target_result(name, result, settings, module_model(args.protocol))
    console.summary(target_res)
    s = result.summary()
    console.line(f"  {s['examples']} examples ({s['valgrind_runs']} under valgrind) in "
                 f"{s['seconds']} s = {s['examples_per_s']}/s, stopped by {s['stopped']}")
    directory = args.report or report.default_dir(Path("reports"), run.started)
    run.targets = [target_res]
    report.write(run, directory)
    if args.report is None:
        report.point_latest(directory)
    console.line("\nreport: ", Verbatim(f"{directory}/index.html"), " (index.json, junit.xml)")
    return _fuzz_exit(result.stopped, target_res, console)
