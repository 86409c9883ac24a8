"""``pamconform server SOCKET...``: a protocol's server suite against auth servers.

Several sockets are several targets of one run and one report (side by side in its
HTML grid); every target gets the same logins (``--credentials-file``, the variable),
so give each its own in a project file (``pamconform run``) when they differ.

What differs per protocol (its options, how the target is built, the up-front login
check) comes from the protocol's hooks (:mod:`pamconform.protocols.hooks`).
"""

from __future__ import annotations

import argparse
import copy
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from pamconform import __version__, protocols, report
from pamconform.cli import common
from pamconform.cli.console import Console
from pamconform.cli.targets import Step, add_shard_options, list_steps, run_steps, shard_steps
from pamconform.core import credentials
from pamconform.core.errors import UsageError
from pamconform.core.options import target_name
from pamconform.core.preflight import check_report_dir
from pamconform.core.registry import Case
from pamconform.core.runner import TargetResult, run_target
from pamconform.protocols.hooks import foreign_server_option, hooks_of

KIND = "server"


def register(sub: Any) -> None:
    srv = sub.add_parser(
        "server", help="check an auth server listening on a UNIX socket")
    srv.add_argument("socket", nargs="*", type=Path,
                     help="the server's socket path; several: one target each, one report")
    common.add_protocol_option(srv, KIND)
    credentials.add_options(srv)
    srv.add_argument("--name", type=target_name, action="append", default=[],
                     help="the target's name in the report (default: the socket); once per "
                     "socket, in order, for several")
    common.add_lab_package_option(srv, KIND)
    for protocol in protocols.with_suites(KIND):
        hooks_of(protocol).add_server_options(srv)
    common.add_run_options(srv)
    add_shard_options(srv)
    srv.set_defaults(func=cmd_server)


def cmd_server(args: argparse.Namespace, console: Console) -> int:
    protocol = protocols.get(args.protocol)
    cases = common.selected(common.protocol_cases(protocol, KIND, args))
    if args.list and args.shard is None:
        return common.list_cases(cases, console)
    if foreign := foreign_server_option(protocol.name, args):
        raise UsageError(f"{foreign[0]} need --protocol {foreign[1]}")
    if args.lab_package is not None:
        return _lab_server(protocol, cases, args, console)
    sockets = args.socket or [None]  # the protocol's hooks say what a missing one means
    if args.name and len(args.name) != len(sockets):
        raise UsageError(f"server: {len(args.name)} --name for {len(sockets)} sockets: give "
                         "one per socket, in order, or none")
    steps = [_socket_step(protocol, cases, args, console, socket,
                          args.name[i] if args.name else None)
             for i, socket in enumerate(sockets)]
    steps, shard = shard_steps(steps, args)
    if args.list:
        return list_steps(steps, console)
    check_report_dir(args.report)
    console.line(f"pamconform {__version__}: {len(cases)} {protocol.name} server cases "
                 f"against {', '.join(s.name for s in steps) or 'no target of this shard'}")
    return run_steps(steps, args, console, report.Run(strict=args.strict, shard=shard))


def _socket_step(protocol: protocols.Protocol, cases: list[Case], args: argparse.Namespace,
                 console: Console, socket: Path | None, name: str | None) -> Step:
    """One socket's target: its input checked by the protocol's hooks, nothing started."""
    one = copy.copy(args)
    # named here, not by the hooks from what they find (a directory, a token command): the
    # plan (shards, merge, a stopped run's NOT-RUN list) and the report use one name
    name = name or (str(socket) if socket is not None else f"{protocol.name}-server")
    one.socket, one.name = socket, name
    hooks = hooks_of(protocol)
    opener: AbstractContextManager[Any] = hooks.server_target(one)

    def check(cases: list[Case]) -> TargetResult:
        with opener as target:
            hooks.check_login(target)
            if len(args.socket) > 1:
                console.line(f"== {target.name}: {len(cases)} {protocol.name} server cases")
            return run_target(cases, target, kind=KIND, protocol=protocol.name,
                              strict=args.strict, progress=console.progress)

    return Step(name, KIND, protocol.name, cases, check)


def _lab_server(protocol: protocols.Protocol, cases: list[Case], args: argparse.Namespace,
                console: Console) -> int:
    """``--lab-package PKG``: the daemon a package installs, in the protocol's lab."""
    pkg = common.lab_package(protocol, KIND, args.lab_package)
    if args.socket:
        raise UsageError("server: give SOCKET or --lab-package, not both")
    if len(args.name) > 1:
        raise UsageError("server: --lab-package is one target: give --name once")
    args.name = args.name[0] if args.name else None
    if credentials.given(args):
        raise UsageError("server: --lab-package uses the lab's own accounts; --credentials "
                         "is not taken")
    own = hooks_of(protocol).foreign_server_options(args)
    if own:
        raise UsageError(f"{own} describe a socket target, not --lab-package")
    return common.lab_command(pkg, protocol, cases, args, console)
