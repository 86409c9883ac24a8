"""What the subcommands share: the parser class, run options, case selection, --list, the
report at the end (also of a stopped run), and the ``--protocol`` option from the registry."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pamconform import protocols, report
from pamconform.cli.console import Console
from pamconform.core import interrupts, loader
from pamconform.core.errors import UsageError
from pamconform.core.interrupts import Interrupted
from pamconform.core.options import REPLY_SECONDS, SECONDS, Count, directory
from pamconform.core.redaction import Verbatim
from pamconform.core.registry import Case, all_cases
from pamconform.core.runner import (
    TargetResult,
    default_jobs,
    exit_code,
    not_run_target,
    select,
)
from pamconform.core.verdicts import STOPPED
from pamconform.protocols import Protocol
from pamconform.protocols.hooks import LabOptions, LabPackage, hooks_of
from pamconform.report import known_findings
from pamconform.report.baseline import apply_baseline

#: The most cases a target may run at once (``--jobs``).
MAX_JOBS = 256

#: A target a run means to check: (name, kind, protocol, cases), for the report of a
#: stopped run (the targets it never reached are listed with every case NOT-RUN).
Planned = tuple[str, str, str, list[Case]]


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are UsageError (one line, exit 2), and that takes
    options by their whole names only: a project file's ``[options]`` yield to the
    options typed, which are told by name (``--case`` for ``--cases`` would not be)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(_without_values(message))


_UNRECOGNIZED = "unrecognized arguments: "


def _without_values(message: str) -> str:
    """argparse's message, with the words of unrecognised arguments that are not option
    names left out: they may be an option's value, a password (``--credentials`` given to a
    command that has none)."""
    if not message.startswith(_UNRECOGNIZED):
        return message
    words = message[len(_UNRECOGNIZED):].split()
    names = [w.split("=", 1)[0] for w in words if w.startswith("-")]
    others = len(words) - len(names)
    told = " ".join(names)
    if others:
        told += f"{' ' if told else ''}(and {others} more, not shown: values may be " \
            "secrets)"
    return _UNRECOGNIZED + told


def add_protocol_option(parser: argparse.ArgumentParser, kind: str) -> None:
    """``--protocol``: the registered protocols that have cases of this target kind."""
    choices = [p.name for p in protocols.with_suites(kind)]
    parser.add_argument("--protocol", choices=choices, default=protocols.DEFAULT)


def add_lab_package_option(parser: argparse.ArgumentParser, kind: str) -> None:
    """``--lab-package PKG``: a target a Debian package installs in a protocol's lab."""
    known = ", ".join(f"{pkg.package} ({p.name})" for p in protocols.with_suites(kind)
                      for pkg in hooks_of(p).lab_packages() if pkg.kind == kind)
    parser.add_argument("--lab-package", metavar="PKG",
                        help="check the target this Debian package installs in the protocol's "
                        f"lab (needs Docker): {known or 'none'}")


def lab_package(protocol: Protocol, kind: str, name: str) -> LabPackage:
    """The protocol's lab target of this kind called ``name``, or a usage error."""
    ours = [pkg for pkg in hooks_of(protocol).lab_packages() if pkg.kind == kind]
    for pkg in ours:
        if pkg.package == name:
            return pkg
    for other in protocols.with_suites(kind):
        if other != protocol and any(pkg.package == name and pkg.kind == kind
                                     for pkg in hooks_of(other).lab_packages()):
            raise UsageError(f"--lab-package {name} is a {other.name} {kind} target: add "
                             f"--protocol {other.name}")
    known = ", ".join(pkg.package for pkg in ours) or "none"
    raise UsageError(f"--lab-package {name!r}: not a {protocol.name} {kind} package "
                     f"(known: {known})")


def run_lab_package(pkg: LabPackage, protocol: Protocol, cases: list[Case],
                    args: argparse.Namespace, console: Console,
                    name: str | None = None) -> TargetResult:
    """Start the lab target, check its login (a server), run the cases, remove the lab."""
    from pamconform.core.runner import run_target

    options = LabOptions(args.timeout, args.idle_limit, getattr(args, "keep", False))
    with pkg.open(options, console.line) as target:
        if name:
            target.name = name
        if pkg.kind == "server":
            hooks_of(protocol).check_login(target)
        return run_target(cases, target, kind=pkg.kind, protocol=protocol.name,
                          strict=args.strict, progress=console.progress)


def lab_command(pkg: LabPackage, protocol: Protocol, cases: list[Case],
                args: argparse.Namespace, console: Console) -> int:
    """``server``/``module --lab-package PKG`` once its input is checked: run, report."""
    from pamconform import __version__
    from pamconform.core.preflight import check_report_dir

    check_report_dir(args.report)
    run = report.Run(strict=args.strict)
    name = args.name or pkg.name
    console.line(f"pamconform {__version__}: {len(cases)} {protocol.name} {pkg.kind} cases "
                 f"against {name} (package {pkg.package}, in the lab)")
    results: list[TargetResult] = []
    try:
        results.append(run_lab_package(pkg, protocol, cases, args, console, name))
    except Interrupted as stop:
        return stopped(stop, results, [(name, pkg.kind, protocol.name, cases)], args,
                       console, run)
    console.summary(results[0])
    return finish(results, args, console, run)


def add_hang_bound(p: argparse.ArgumentParser) -> None:
    timeouts = ", ".join(f"{m.default_timeout:g} s for {proto.title}"
                         for proto in protocols.all_protocols()
                         if (m := proto.reference_module) is not None)
    p.add_argument("--hang-bound", type=SECONDS, default=None, metavar="SECONDS",
                   help="R-M2: how long a login may take while the server hangs (default: the "
                   f"protocol's reference module's timeout ({timeouts}) + 2 s; e2e logins add "
                   "the time the login path takes to deny at once)")


def add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--strict", action="store_true", help="NON-STRICT counts as FAIL")
    p.add_argument("--cases", action="append", default=[], metavar="GLOB",
                   help="run only cases whose id matches (repeatable)")
    p.add_argument("--exclude-cases", action="append", default=[], metavar="GLOB")
    p.add_argument("--list", action="store_true", help="list the selected cases and exit")
    p.add_argument("--timeout", type=REPLY_SECONDS, default=5.0, metavar="SECONDS",
                   help="how long to wait for each reply (default 5)")
    p.add_argument("--idle-limit", type=SECONDS, default=10.0, metavar="SECONDS",
                   help="how long to wait for the server to drop a silent client (default 10)")
    p.add_argument("--report", type=directory, metavar="DIR",
                   help="report directory (default reports/<timestamp>/, reports/latest)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--jobs", type=Count(maximum=MAX_JOBS), metavar="N",
                   help="cases run at once, except those that need something alone "
                   f"(default {default_jobs()}, four times the CPUs, at most 8, for module "
                   "targets, whose cases each get their own scenario server; a server "
                   "target's cases share its one process and run one after another unless "
                   "--jobs is given, but for the idle-client cases, side by side where "
                   "the first of them is when all pass; 1: one after another everywhere)")
    p.add_argument("--known-findings", type=_known_findings, metavar="FILE",
                   help="'TARGET CASE-ID' lines: FAILs already reported upstream; they stay FAIL "
                   "in the report but do not set the exit code")


def _known_findings(text: str) -> list[known_findings.KnownFinding]:
    """Read the list before the run starts, so a typo costs no run."""
    return known_findings.load(Path(text))


def protocol_cases(protocol: Protocol, kind: str, args: argparse.Namespace) -> list[Case]:
    """The protocol's cases of one target kind that ``--cases``/``--exclude-cases`` select."""
    for folder in protocol.suite_folders(kind):
        loader.load_suite(folder)
    return select(all_cases(protocol=protocol.name, kind=kind), args.cases, args.exclude_cases)


def selected(cases: list[Case]) -> list[Case]:
    """``cases``, or a usage error when the globs left none."""
    if not cases:
        raise UsageError("no case matches --cases/--exclude-cases")
    return cases


def list_cases(cases: list[Case], console: Console) -> int:
    for c in cases:
        console.line(f"{c.id:<42} {c.rule:<5} {c.severity!s:<6} {c.title}")
    console.line(f"{len(cases)} cases")
    return 0


def in_lane(args: argparse.Namespace) -> bool:
    """Whether this process is a lane of ``run --parallel``: its parent shows the
    summaries and closing lines and writes the report."""
    return bool(getattr(args, "lane_targets", None))


def finish(targets: list[TargetResult], args: argparse.Namespace, console: Console,
           run: report.Run) -> int:
    """Write the report (and compare it with ``--baseline``); the exit code."""
    run.targets = targets
    counted, lines = targets, []
    known: frozenset[tuple[str, str]] = frozenset()
    if getattr(args, "known_findings", None):
        counted, outcome = known_findings.apply(args.known_findings, targets)
        lines = outcome.lines()
        known = frozenset((k.target, k.case) for k in outcome.still_failing)
        if run.shard is not None:  # pamconform merge leaves them out of its exit code too
            run.shard["known_failing"] = [[k.target, k.case] for k in outcome.still_failing]
    base = Path("reports")
    directory = args.report or report.default_dir(base, run.started)
    lane = in_lane(args)
    with interrupts.shielded():  # a signal now waits until the report is whole
        report.write(run, directory)
        if args.report is None:
            report.point_latest(directory)
        if not lane:
            console.line("\nreport: ", Verbatim(f"{directory}/index.html"),
                         " (index.json, junit.xml)")
    if lane:
        return exit_code(counted)
    for parts in lines:
        console.line(*parts)
    if getattr(args, "baseline", None) is not None:  # --baseline (pamconform.cli.diff)
        return max(exit_code(counted), apply_baseline(args.baseline, report.redacted(run),
                                                      console.line, known))
    return exit_code(counted)


def stopped(stop: Interrupted, results: list[TargetResult], planned: list[Planned],
            args: argparse.Namespace, console: Console, run: report.Run) -> int:
    """Write the report of a run stopped by Ctrl-C or SIGTERM; 130 or 143."""
    if isinstance(stop.partial, TargetResult):
        results.append(stop.partial)
        if not in_lane(args):
            console.summary(stop.partial)
    done = {t.name for t in results}
    results += [not_run_target(name, cases, stop, kind=kind, protocol=protocol)
                for name, kind, protocol, cases in planned if name not in done]
    finished = sum(1 for t in results for r in t.results if r.verdict not in STOPPED)
    console.line(f"\npamconform: stopped by {stop.signame}; {finished} case(s) finished, "
                 "the report lists the rest as INTERRUPTED or NOT-RUN")
    run.interrupted = stop.signame
    finish(results, args, console, run)
    return stop.exit_code
