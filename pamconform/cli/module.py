"""``pamconform module SRC``: build a PAM module in the lab and run a protocol's module suites.

Defaults for the build (the ``.so``, the PAM arguments) are those of the protocol's
reference module (its profile's ``reference_module``).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path
from typing import Any

from pamconform import __version__, protocols, report
from pamconform.cli import common
from pamconform.cli.console import Console
from pamconform.cli.module_targets import run_sources
from pamconform.cli.targets import add_shard_options
from pamconform.core.errors import UsageError
from pamconform.core.interrupts import Interrupted
from pamconform.core.options import SECONDS, target_name
from pamconform.core.preflight import check_report_dir
from pamconform.core.registry import Case
from pamconform.protocols import Protocol, ReferenceModule
from pamconform.protocols.hooks import hooks_of

KIND = "module"


def register(sub: Any) -> None:
    mod = sub.add_parser("module", help="build a PAM module from source in the lab and check "
                         "it end to end through sshd and su")
    mod.add_argument("src", type=Path, nargs="*",
                     help="the module's source directory; several: one target each (the "
                     "same build options), one report, side by side")
    mod.add_argument("--build", default="make", help="build command, run in SRC (default make)")
    mod.add_argument("--so", default=None,
                     help="the .so the build produces (default: the protocol's reference "
                     f"module's, {_reference(protocols.get(protocols.DEFAULT)).so} for "
                     f"{protocols.DEFAULT})")
    mod.add_argument("--args", default=None,
                     help="PAM module arguments, {socket} is substituted (default: the "
                     "protocol's reference module's: " + _default_args() + ")")
    common.add_protocol_option(mod, KIND)
    mod.add_argument("--collect-password", action="store_true",
                     help="stack 'auth optional pam_unix.so' first, for modules that do not "
                     "prompt (the original pam_redirector)")
    mod.add_argument("--login-timeout", type=SECONDS, default=20.0, metavar="SECONDS",
                     help="a login with no verdict by then is HUNG (default 20)")
    common.add_hang_bound(mod)
    mod.add_argument("--keep", action="store_true", help="leave the lab container running")
    mod.add_argument("--no-lab", action="store_true",
                     help="no Docker, no root: build on this host and run the direct-driver "
                     "cases as the invoking user; the cases that need the "
                     "lab are SKIPPED with their reason (docs/module.md#no-lab)")
    mod.add_argument("--name", type=target_name, action="append", default=[],
                     help="the target's name in the report (default: SRC); once per SRC, "
                     "in order, for several")
    common.add_lab_package_option(mod, KIND)
    mod.add_argument("--distro", default="bookworm", metavar="LIST",
                     help="Debian releases to run the lab on, comma-separated: bookworm, "
                     "trixie (default bookworm); one lab each, targets NAME@DISTRO, one report")
    for protocol in protocols.with_suites(KIND):
        hooks_of(protocol).add_module_options(mod)
    common.add_run_options(mod)
    add_shard_options(mod)
    mod.set_defaults(func=cmd_module)


def _reference(protocol: Protocol) -> ReferenceModule:
    if protocol.reference_module is None:
        packages = [p.package for p in hooks_of(protocol).lab_packages() if p.kind == KIND]
        if packages:
            raise UsageError(f"--protocol {protocol.name} builds no module from source: its "
                             f"module targets are lab packages (--lab-package "
                             f"{', '.join(packages)})")
        raise UsageError(f"--protocol {protocol.name} is not supported yet for module "
                         "(it has no reference module)")
    return protocol.reference_module


def _default_args() -> str:
    return ", ".join(f"{m.args or 'none'} for {p.name}" for p in protocols.with_suites(KIND)
                     if (m := p.reference_module) is not None)


def cmd_module(args: argparse.Namespace, console: Console) -> int:
    from pamconform.lab.distros import parse_distros
    from pamconform.lab.module_target import ModuleSpec

    protocol = protocols.get(args.protocol)
    distros = parse_distros(args.distro)
    cases = common.selected(common.protocol_cases(protocol, KIND, args))
    sources, names = args.src, args.name
    if names and len(names) != max(len(sources), 1):
        raise UsageError(f"module: {len(names)} --name for {len(sources)} SRC: give one per "
                         "SRC, in order, or none")
    args.src, args.name = (sources[0] if sources else None), (names[0] if names else None)
    if args.list and args.shard is None:
        return common.list_cases(cases, console)
    if args.lab_package is not None:
        if args.no_lab:
            raise UsageError("module: --lab-package runs in the lab, not with --no-lab")
        return _lab_module(protocol, cases, args, console)
    if args.src is None:
        raise UsageError("module: the SRC_DIR argument (or --lab-package) is required")
    ref = _reference(protocol)
    spec = ModuleSpec(args.src, args.build, args.so or ref.so,
                      ref.args if args.args is None else args.args, protocol.name,
                      args.collect_password, hang_bound=args.hang_bound)
    spec.validate()
    name = args.name or str(args.src)
    if args.no_lab:
        if len(sources) > 1:
            raise UsageError("module: --no-lab checks one SRC")
        check_report_dir(args.report)
        return _no_lab(spec, cases, name, args, console, report.Run(strict=args.strict))
    specs = [(name, spec)]
    for i, src in enumerate(sources[1:], 1):  # the same build options for each
        specs.append((names[i] if names else str(src), dataclasses.replace(spec, src=src)))
        specs[-1][1].validate()
    return run_sources(protocol, specs, distros, cases, args, console)


def _no_lab(spec: Any, cases: list[Case], name: str, args: argparse.Namespace,
            console: Console, run: report.Run) -> int:
    """``--no-lab``: the root-less tier (pamconform/drivers/host_module.py)."""
    from pamconform.drivers.host_module import run_host_module

    lab_only = [flag for dest, flag, default in _LAB_ONLY if getattr(args, dest) != default]
    if lab_only:
        raise UsageError(f"{', '.join(lab_only)}: for the lab, not --no-lab")
    console.line(f"pamconform {__version__}: {len(cases)} {spec.protocol} module cases "
                 f"against {name} (no lab: this host, uid {os.getuid()})")
    try:
        result = run_host_module(spec, cases, name=name, strict=args.strict,
                                 say=console.line, progress=console.progress)
    except Interrupted as stop:
        return common.stopped(stop, [], [(name, KIND, spec.protocol, cases)], args, console,
                              run)
    console.summary(result)
    return common.finish([result], args, console, run)


#: Lab options ``--no-lab`` does not take (dest, flag, default).
_LAB_ONLY = (("keep", "--keep", False), ("distro", "--distro", "bookworm"))


#: Options of a source build that a lab package does not take (dest, flag, default).
_BUILD_ONLY = (("so", "--so", None), ("args", "--args", None), ("build", "--build", "make"),
               ("collect_password", "--collect-password", False),
               ("hang_bound", "--hang-bound", None), ("distro", "--distro", "bookworm"))


def _lab_module(protocol: Protocol, cases: list[Case], args: argparse.Namespace,
                console: Console) -> int:
    """``--lab-package PKG``: the module a package installs, in the protocol's lab."""
    pkg = common.lab_package(protocol, KIND, args.lab_package)
    if args.src is not None:
        raise UsageError("module: give SRC or --lab-package, not both")
    given = [flag for dest, flag, default in _BUILD_ONLY if getattr(args, dest) != default]
    if given:
        raise UsageError(f"{', '.join(given)}: for a module built from SRC, not --lab-package "
                         "(the package's module runs as installed)")
    return common.lab_command(pkg, protocol, cases, args, console)
