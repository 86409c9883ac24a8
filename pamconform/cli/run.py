"""``pamconform run``: every registered protocol's suites against its bundled reference
targets, one report; or, with a project file (``pamconform.toml``, ``[tool.pamconform]`` in
``pyproject.toml``, ``--project FILE``), the targets it names (:mod:`pamconform.cli.project_run`).

The plan, in report order: each protocol's reference servers (and, with ``--gallery``, the
faulty ones) and the daemons its Debian packages install in its lab, with its server
suite; then, unless ``--no-lab``, the PAM stack suite (lab libpam against the model) and,
per ``--distro``, each protocol's reference module built in the lab with its module
suites; then the modules its packages install in its lab. With ``--no-lab`` the lab
package targets are listed with every case SKIPPED. Which protocols, servers and modules:
the registry (profiles and hooks) says.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pamconform import protocols, report
from pamconform.cli import common, parallel_run, project_run
from pamconform.cli.console import Console
from pamconform.cli.targets import Step, add_shard_options, list_steps, run_steps, shard_steps
from pamconform.core import resources
from pamconform.core.preflight import check_report_dir
from pamconform.core.registry import Case
from pamconform.core.runner import CaseResult, TargetResult, run_target
from pamconform.core.verdicts import Verdict
from pamconform.protocols import Protocol
from pamconform.protocols.hooks import LabPackage, ReferenceServer, hooks_of

if TYPE_CHECKING:
    from pamconform.lab.module_target import ModuleSpec

#: The target name of the PAM stack suite (lab libpam against the model).
CHAIN_TARGET = "lab libpam"


def register(sub: Any) -> None:
    run = sub.add_parser("run", help="the main job: every suite against the bundled "
                         "reference targets (or a project file's targets), one report")
    run.add_argument("--project", type=Path, metavar="FILE",
                     help="a project file naming the targets to check (default: "
                     "./pamconform.toml, or ./pyproject.toml's [tool.pamconform]; without "
                     "one, the bundled reference targets)")
    run.add_argument("--gallery", action="store_true",
                     help="also run the faulty redirector servers of the test fixtures "
                     "(tests/fixtures/faulty_servers.py), to show what the suite catches")
    run.add_argument("--no-lab", action="store_true",
                     help="skip the module suites and the targets that live in the lab (they "
                     "need a Docker engine; lab targets are listed as skipped)")
    run.add_argument("--keep", action="store_true", help="leave lab containers running")
    run.add_argument("--distro", default="bookworm", metavar="LIST",
                     help="Debian releases for the module suites, comma-separated: bookworm, "
                     "trixie (default bookworm)")
    common.add_hang_bound(run)
    common.add_run_options(run)
    add_shard_options(run)
    parallel_run.add_options(run)
    run.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace, console: Console) -> int:
    from pamconform.lab.distros import parse_distros

    project = project_run.find(args)
    if project is not None:
        project_run.apply_options(project, args)
        distros = project_run.distros(project, args)
        steps = project_run.plan(project, args, console)
    else:
        distros = parse_distros(args.distro)
        steps = plan(args, console, distros)
    common.selected([c for step in steps for c in step.cases])
    steps, shard = shard_steps(steps, args)
    steps = parallel_run.keep_lane(steps, args)
    if args.list:
        return list_steps(steps, console)
    check_report_dir(args.report)
    run = report.Run(strict=args.strict, shard=shard)
    if project is not None:
        console.line(f"pamconform: the targets of {project.path} ({len(steps)} targets)")

    def differences(results: list[TargetResult]) -> list[str]:
        if len(distros) > 1 and any(s.kind == "module" for s in steps):
            from pamconform.lab.module_run import distro_differences, format_differences

            return format_differences(distro_differences(results), distros)
        return []

    if args.parallel > 1:
        return parallel_run.run_lanes(steps, args, console, run, after=differences)
    return run_steps(steps, args, console, run, after=differences)


def plan(args: argparse.Namespace, console: Console, distros: list[str]) -> list[Step]:
    """The run's targets in report order (those whose selected cases are none left out)."""
    steps: list[Step] = []
    for protocol in protocols.with_suites("server"):
        servers = hooks_of(protocol).reference_servers(args.gallery)
        in_lab = _lab_packages(protocol, "server")
        cases = common.protocol_cases(protocol, "server", args) if servers or in_lab else []
        steps += [_server_step(protocol, server, cases, args, console) for server in servers]
        steps += [_lab_step(protocol, pkg, cases, args, console) for pkg in in_lab]
    if not args.no_lab:
        modules = [p for p in protocols.with_suites("module")
                   if p.reference_module is not None
                   and hooks_of(p).REFERENCE_MODULE_TARGET is not None]
        mcases = {p.name: common.protocol_cases(p, "module", args) for p in modules}
        for protocol in protocols.with_suites("stack"):  # its own lab: chosen on its own too
            steps.append(_stack_step(protocol, common.protocol_cases(protocol, "stack", args),
                                     args, console))
        if any(mcases.values()):
            for distro in distros:
                steps += [_module_step(p, mcases[p.name], distro, distros, args, console)
                          for p in modules]
    for protocol in protocols.with_suites("module"):
        in_lab = _lab_packages(protocol, "module")
        cases = common.protocol_cases(protocol, "module", args) if in_lab else []
        steps += [_lab_step(protocol, pkg, cases, args, console) for pkg in in_lab]
    return [s for s in steps if s.cases]


def _lab_packages(protocol: Protocol, kind: str) -> list[LabPackage]:
    return [pkg for pkg in hooks_of(protocol).lab_packages() if pkg.kind == kind]


def _lab_step(protocol: Protocol, pkg: LabPackage, cases: list[Case],
              args: argparse.Namespace, console: Console) -> Step:
    """A target a Debian package installs in the protocol's lab; with ``--no-lab`` every
    case is listed SKIPPED (the target is in the report, not checked)."""
    def check(cases: list[Case]) -> TargetResult:
        if args.no_lab:
            console.line(f"== {pkg.name}: {len(cases)} {protocol.name} {pkg.kind} cases "
                         "skipped (--no-lab)")
            why = f"not run: {pkg.name} lives in the lab (package {pkg.package}) and --no-lab"
            return TargetResult(pkg.name, pkg.kind, protocol.name,
                                [CaseResult(c, Verdict.SKIPPED, why, 0.0) for c in cases])
        console.line(f"== {pkg.name}: {len(cases)} {protocol.name} {pkg.kind} cases "
                     f"(lab, package {pkg.package})")
        return common.run_lab_package(pkg, protocol, cases, args, console)

    return Step(pkg.name, pkg.kind, protocol.name, cases, check,
                lab=None if args.no_lab else f"{protocol.name} ({pkg.package})",
                in_lab=not args.no_lab)


def _server_step(protocol: Protocol, server: ReferenceServer, cases: list[Case],
                 args: argparse.Namespace, console: Console) -> Step:
    def check(cases: list[Case]) -> TargetResult:
        console.line(f"== {server.name}: {len(cases)} {protocol.name} server cases")
        with server.open(args.timeout, args.idle_limit) as target:
            return run_target(cases, target, kind="server", protocol=protocol.name,
                              strict=args.strict, progress=console.progress)

    return Step(server.name, "server", protocol.name, cases, check)


def _stack_step(protocol: Protocol, cases: list[Case], args: argparse.Namespace,
                console: Console) -> Step:
    def check(cases: list[Case]) -> TargetResult:
        from pamconform.lab.stack import StackLab
        from pamconform.lab.stack_cases import StackTarget

        console.line(f"== pam-stacks: {len(cases)} stack cases (lab libpam against the model)")
        with StackLab.open(say=console.line) as lab:
            return run_target(cases, StackTarget(CHAIN_TARGET, lab), kind="stack",
                              protocol=protocol.name, strict=args.strict,
                              progress=console.progress)

    return Step(CHAIN_TARGET, "stack", protocol.name, cases, check, in_lab=True)


def _module_step(protocol: Protocol, cases: list[Case], distro: str, distros: list[str],
                 args: argparse.Namespace, console: Console) -> Step:
    from pamconform.lab import module_run

    base = hooks_of(protocol).REFERENCE_MODULE_TARGET
    assert base is not None
    name = module_run.distro_target_name(base, distro, distros)

    def check(cases: list[Case]) -> TargetResult:
        console.line(f"== {name}: {len(cases)} {protocol.name} module cases (lab, {distro})")
        return module_run.run_module(reference_module_spec(protocol, args.hang_bound), cases,
                                     name=name, distro=distro, keep=args.keep,
                                     strict=args.strict, say=console.line,
                                     progress=console.progress)

    return Step(name, "module", protocol.name, cases, check, lab=distro, in_lab=True)


def reference_module_spec(protocol: Protocol, hang_bound: float | None = None) -> ModuleSpec:
    """How ``run`` builds the protocol's reference module (``run_args`` keep it fast)."""
    from pamconform.lab.module_target import ModuleSpec

    ref = protocol.reference_module
    assert ref is not None
    return ModuleSpec(resources.modules_dir() / ref.folder, "make", ref.so,
                      ref.run_args if ref.run_args is not None else ref.args, protocol.name,
                      hang_bound=hang_bound)
