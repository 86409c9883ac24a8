"""``pamconform server SOCKET``: a protocol's server suite against an auth server.

What differs per protocol (its options, how the target is built, the up-front login
check) comes from the protocol's hooks (:mod:`pamconform.protocols.hooks`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pamconform import __version__, protocols, report
from pamconform.cli import common
from pamconform.cli.console import Console
from pamconform.core import credentials
from pamconform.core.errors import UsageError
from pamconform.core.interrupts import Interrupted
from pamconform.core.preflight import check_report_dir
from pamconform.core.registry import Case
from pamconform.core.runner import TargetResult, run_target
from pamconform.protocols.hooks import hooks_of

KIND = "server"


def register(sub: Any) -> None:
    srv = sub.add_parser(
        "server", help="check an auth server listening on a UNIX socket")
    srv.add_argument("socket", nargs="?", type=Path, help="the server's socket path")
    common.add_protocol_option(srv, KIND)
    credentials.add_options(srv)
    srv.add_argument("--name", help="the target's name in the report (default: the socket)")
    common.add_lab_package_option(srv, KIND)
    for protocol in protocols.with_suites(KIND):
        hooks_of(protocol).add_server_options(srv)
    common.add_run_options(srv)
    srv.set_defaults(func=cmd_server)


def cmd_server(args: argparse.Namespace, console: Console) -> int:
    protocol = protocols.get(args.protocol)
    cases = common.selected(common.protocol_cases(protocol, KIND, args))
    if args.list:
        return common.list_cases(cases, console)
    for other in protocols.with_suites(KIND):
        given = hooks_of(other).foreign_server_options(args) if other != protocol else None
        if given:
            raise UsageError(f"{given} need --protocol {other.name}")
    hooks = hooks_of(protocol)
    if args.lab_package is not None:
        return _lab_server(protocol, cases, args, console)
    opener = hooks.server_target(args)  # the input checked, nothing started yet
    check_report_dir(args.report)
    run = report.Run(strict=args.strict)
    results: list[TargetResult] = []
    with opener as target:
        try:
            hooks.check_login(target)
            console.line(f"pamconform {__version__}: {len(cases)} {protocol.name} server cases "
                         f"against {target.name}")
            results.append(run_target(cases, target, kind=KIND, protocol=protocol.name,
                                      strict=args.strict, progress=console.progress))
        except Interrupted as stop:
            planned = [(target.name, KIND, protocol.name, cases)]
            return common.stopped(stop, results, planned, args, console, run)
    console.summary(results[0])
    return common.finish(results, args, console, run)


def _lab_server(protocol: protocols.Protocol, cases: list[Case], args: argparse.Namespace,
                console: Console) -> int:
    """``--lab-package PKG``: the daemon a package installs, in the protocol's lab."""
    pkg = common.lab_package(protocol, KIND, args.lab_package)
    if args.socket is not None:
        raise UsageError("server: give SOCKET or --lab-package, not both")
    if credentials.given(args):
        raise UsageError("server: --lab-package uses the lab's own accounts; --credentials "
                         "is not taken")
    own = hooks_of(protocol).foreign_server_options(args)
    if own:
        raise UsageError(f"{own} describe a socket target, not --lab-package")
    return common.lab_command(pkg, protocol, cases, args, console)
