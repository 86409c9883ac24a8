"""The redirector protocol's glue to the CLI and ``pamconform run`` (see protocols.hooks).

A server target is a socket plus valid logins (``--credentials`` and friends, options
every login-based protocol shares, so the CLI adds them); ``run`` checks the bundled
reference server and, with ``--gallery``, the faulty servers of the test fixtures.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from pamconform.core import credentials
from pamconform.core.context import ServerTarget
from pamconform.core.credentials import Login
from pamconform.core.errors import UsageError
from pamconform.core.options import PID
from pamconform.core.preflight import check_socket
from pamconform.lab.localserver import CommandFor, LocalServer, reference_command
from pamconform.protocols.hooks import LabPackage, ReferenceServer
from pamconform.protocols.redirector.login_check import check_logins
from pamconform.protocols.redirector.profile import PROTOCOL

#: Credentials of the bundled reference targets (the lab image uses the same).
REFERENCE_CREDENTIALS = [("alice", "alice-auth-pw"), ("bob", "bob-auth-pw")]
REFERENCE_MODULE_TARGET: str | None = "reference-module"


def add_server_options(parser: argparse.ArgumentParser) -> None:
    """``--pid``; the login options are shared (added by the CLI)."""
    group = parser.add_argument_group(f"{PROTOCOL.name} server")
    group.add_argument("--pid", type=PID, metavar="PID",
                       help="the server's process id: the endurance case reports (and "
                       "judges) the growth of its open descriptors and memory")


def add_module_options(parser: argparse.ArgumentParser) -> None:
    """None of its own."""


def foreign_server_options(args: argparse.Namespace) -> str | None:
    """``--pid`` (the login options are shared, so none of them is foreign)."""
    return "--pid" if getattr(args, "pid", None) is not None else None


def server_target(args: argparse.Namespace) -> AbstractContextManager[ServerTarget]:
    if args.socket is None:
        raise UsageError("server: the SOCKET argument is required")
    logins = credentials.gather(args)
    if not logins:
        raise UsageError(f"server: {credentials.NEED_ONE}")
    return _open(args.socket, logins, args)


@contextmanager
def _open(socket: Path, logins: list[Login], args: argparse.Namespace) -> Iterator[ServerTarget]:
    check_socket(socket, args.timeout)
    pid = getattr(args, "pid", None)
    if pid is not None and not os.path.isdir(f"/proc/{pid}"):
        raise UsageError(f"--pid {pid}: no such process")
    yield ServerTarget(args.name or str(socket), socket, PROTOCOL.name, logins, args.timeout,
                       args.idle_limit, pid)


def check_login(target: ServerTarget) -> None:
    check_logins(target.socket, target.credentials, target.timeout)
    target.logins_checked = True


def reference_servers(gallery: bool) -> list[ReferenceServer]:
    from pamconform.lab import gallery as faulty

    commands: list[tuple[str, CommandFor]] = [("reference-server", reference_command())]
    if gallery:
        commands += [(f"faulty:{name}", cmd) for name, cmd in faulty.commands().items()]
    return [ReferenceServer(name, _starter(name, cmd)) for name, cmd in commands]


def _starter(name: str, command: CommandFor
             ) -> Callable[[float, float], AbstractContextManager[ServerTarget]]:
    @contextmanager
    def start(timeout: float, idle_limit: float) -> Iterator[ServerTarget]:
        pairs = [(u.encode(), p.encode()) for u, p in REFERENCE_CREDENTIALS]
        with LocalServer(command, REFERENCE_CREDENTIALS, name=name) as server:
            pid = server.proc.pid if server.proc is not None else None
            yield ServerTarget(name, server.socket, PROTOCOL.name, pairs, timeout, idle_limit,
                               pid)

    return start


def lab_packages() -> list[LabPackage]:
    """None: the reference targets are built from this repository."""
    return []
