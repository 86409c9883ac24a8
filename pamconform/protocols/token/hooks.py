"""The transient-token protocol's glue to the CLI and ``pamconform run`` (see protocols.hooks).

A server target is the token server plus a source of fresh tokens (``--token-command``)
or the one ``--token``; ``run`` checks the bundled token server, its sockets in a
private directory.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from pamconform.core import credentials, interrupts, resources
from pamconform.core.errors import UsageError
from pamconform.core.options import SECONDS
from pamconform.protocols.hooks import LabPackage, ReferenceServer
from pamconform.protocols.token.login_check import check_token_command
from pamconform.protocols.token.profile import PROTOCOL
from pamconform.protocols.token.target import TokenServerTarget
from pamconform.protocols.token.target_options import make_target

REFERENCE_MODULE_TARGET: str | None = "reference-token-module"
#: The bundled token server's token lifetime in ``pamconform run`` (seconds).
REFERENCE_LIFETIME = 10


def add_server_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(f"{PROTOCOL.name} protocol")
    group.add_argument("--token-command", metavar="CMD",
                       help="prints a fresh token and leaves its server waiting (run per case)")
    group.add_argument("--token", help="one token: only the first case that needs one runs")
    group.add_argument("--expiry", type=SECONDS, metavar="SECONDS",
                       help="the token server's lifetime, for the expiry case")


def add_module_options(parser: argparse.ArgumentParser) -> None:
    """None of its own."""


def foreign_server_options(args: argparse.Namespace) -> str | None:
    if getattr(args, "token_command", None) or getattr(args, "token", None):
        return "--token-command and --token"
    return None


def server_target(args: argparse.Namespace) -> AbstractContextManager[TokenServerTarget]:
    if credentials.given(args):
        raise UsageError("--credentials is not used by the token protocol: it needs "
                         "--token-command CMD or --token TOKEN")
    return _open(args)


@contextmanager
def _open(args: argparse.Namespace) -> Iterator[TokenServerTarget]:
    # the token command runs here, after the CLI's checks of the report directory
    target = make_target(args.socket, args.token_command, args.token, args.timeout, args.name,
                         idle_limit=args.idle_limit, expiry=args.expiry)
    try:
        yield target
    finally:
        target.close()


def check_login(target: TokenServerTarget) -> None:
    check_token_command(target)


def reference_servers(gallery: bool) -> list[ReferenceServer]:
    """The bundled token server (there is no faulty-server gallery for this protocol)."""
    return [ReferenceServer("reference-token-server", _reference)]


@contextmanager
def _reference(timeout: float, idle_limit: float) -> Iterator[TokenServerTarget]:
    directory = Path(tempfile.mkdtemp(prefix="pc-tok-", dir="/tmp"))
    interrupts.remove_on_quit(directory, directory=directory)
    command = shlex.join([sys.executable, str(resources.servers_dir() / "token_server.py"),
                          "--socket-dir", str(directory), "--timeout", str(REFERENCE_LIFETIME),
                          "--allow-uid", str(os.getuid())])
    try:
        target = make_target(directory, command, None, timeout, "reference-token-server",
                             idle_limit=idle_limit, expiry=REFERENCE_LIFETIME)
        try:
            yield target
        finally:
            target.close()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
        interrupts.removed(directory)


def lab_packages() -> list[LabPackage]:
    """None: the reference targets are built from this repository."""
    return []
