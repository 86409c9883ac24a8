"""The nslcd protocol's glue to the CLI (see protocols.hooks): not wired yet.

Its server suite lists (``pamconform server --protocol nslcd --list``); checking a daemon
from the command line needs the directory's test accounts as options (expired, locked,
differently spelled users), still to be designed, so ``server`` says so in one line
instead of grading a daemon against accounts it does not have.
"""

from __future__ import annotations

import argparse
from contextlib import AbstractContextManager
from typing import Any

from pamconform.core.errors import UsageError
from pamconform.protocols.hooks import ReferenceServer
from pamconform.protocols.nslcd.profile import PROTOCOL

REFERENCE_MODULE_TARGET: str | None = None


def add_server_options(parser: argparse.ArgumentParser) -> None:
    """None yet."""


def add_module_options(parser: argparse.ArgumentParser) -> None:
    """None yet."""


def foreign_server_options(args: argparse.Namespace) -> str | None:
    return None


def server_target(args: argparse.Namespace) -> AbstractContextManager[Any]:
    raise UsageError(f"--protocol {PROTOCOL.name} is not supported yet for server "
                     "(--list shows its cases)")


def check_login(target: Any) -> None:
    raise UsageError(f"--protocol {PROTOCOL.name} is not supported yet for server")


def reference_servers(gallery: bool) -> list[ReferenceServer]:
    """None: the nslcd daemons run in the nslcd lab, not from ``pamconform run`` yet."""
    return []
