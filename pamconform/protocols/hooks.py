"""The interface of a protocol's hooks module: its glue to the CLI and ``pamconform run``.

A protocol's ``Protocol.hooks`` names a module (``pamconform.protocols.<name>.hooks``)
whose module-level names satisfy :class:`Hooks`. Everything the CLI does that differs
per protocol goes through it; what is only data (suites, the reference module's folder,
``.so``, arguments and timeout) stays in the protocol's ``profile.py``.

The order of calls for ``pamconform server --protocol NAME``::

    add_server_options(parser)            # once per protocol, when the parser is built
    foreign_server_options(args)          # every *other* protocol: its options were given?
    opener = server_target(args)          # validate the input, no I/O yet (UsageError)
    with opener as target:                # connect / start what the target needs
        check_login(target)               # the up-front login check (UsageError)
        ...                               # the cases run against ``target``

With ``--lab-package PKG`` (``server`` and ``module``) the CLI opens the target of
``lab_packages()`` named PKG instead.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class ReferenceServer:
    """A bundled server ``pamconform run`` starts and checks with the protocol's suite."""

    #: the target's name in the report (``reference-server``, ``faulty:...``)
    name: str
    #: ``open(timeout, idle_limit)`` starts the server; entering yields the server target,
    #: leaving stops the server and removes what it made
    open: Callable[[float, float], AbstractContextManager[Any]]


@dataclass(frozen=True)
class LabOptions:
    """What a lab target needs from the command line."""

    timeout: float = 5.0
    idle_limit: float = 10.0
    keep: bool = False


#: Progress lines of a lab target's start (the lab does not print: the CLI does).
Say = Callable[[str], object]


@dataclass(frozen=True)
class LabPackage:
    """A target a distribution package installs in the protocol's lab (``--lab-package``)."""

    #: the package's name, as ``--lab-package`` takes it
    package: str
    #: ``server`` or ``module``: the command (and the suites) it is a target of
    kind: str
    #: the target's name in the report
    name: str
    #: ``open(options, say)``: entering starts the lab container and yields the target,
    #: leaving removes the container (unless ``options.keep``)
    open: Callable[[LabOptions, Say], AbstractContextManager[Any]]


@runtime_checkable
class Hooks(Protocol):
    """What a protocol's hooks module provides (module-level functions and constants)."""

    #: the report name of the reference module's target in ``pamconform run`` (None:
    #: ``run`` builds no reference module for this protocol)
    REFERENCE_MODULE_TARGET: str | None

    def add_server_options(self, parser: argparse.ArgumentParser) -> None:
        """Add the protocol's own options to ``pamconform server`` (a titled group)."""

    def add_module_options(self, parser: argparse.ArgumentParser) -> None:
        """Add the protocol's own options to ``pamconform module``."""

    def foreign_server_options(self, args: argparse.Namespace) -> str | None:
        """The protocol's own server options that ``args`` sets, named for an error line
        ("--token-command and --token"), or None: given with another protocol, they are
        a usage error."""

    def server_target(self, args: argparse.Namespace) -> AbstractContextManager[Any]:
        """Check ``pamconform server``'s input for this protocol (UsageError, no I/O), and
        return what opens the target: entering checks the socket or starts what the target
        needs and yields it; leaving releases it."""

    def check_login(self, target: Any) -> None:
        """The up-front check that the target grants a valid login (UsageError if not),
        so that bad credentials cost one line, not a FAIL of every case."""

    def reference_servers(self, gallery: bool) -> list[ReferenceServer]:
        """The bundled servers ``pamconform run`` checks (and, with ``gallery``, the faulty
        servers of the test fixtures), in report order; empty when there are none."""

    def lab_packages(self) -> list[LabPackage]:
        """The targets Debian packages install in the protocol's lab (``--lab-package``,
        and ``pamconform run`` unless ``--no-lab``); empty when there are none."""


def hooks_of(protocol: Any) -> Hooks:
    """The hooks module of a registered protocol, checked against :class:`Hooks`."""
    module = protocol.load_hooks()
    if not isinstance(module, Hooks):
        missing = [n for n in _MEMBERS if not hasattr(module, n)]
        raise TypeError(f"{protocol.hooks}: not a hooks module (missing {', '.join(missing)})")
    return module


def foreign_server_option(protocol: str, args: Any) -> tuple[str, str] | None:
    """The options of another protocol than ``protocol`` that ``args`` gives, and that
    protocol's name (the first such protocol), or None."""
    from pamconform.protocols import all_protocols

    for other in all_protocols():
        if other.name != protocol and (given := hooks_of(other).foreign_server_options(args)):
            return given, other.name
    return None


_MEMBERS = ("REFERENCE_MODULE_TARGET", "add_server_options", "add_module_options",
            "foreign_server_options", "server_target", "check_login", "reference_servers",
            "lab_packages")
