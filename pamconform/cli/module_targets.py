"""Module targets built from source in the lab, as steps: ``module SRC...`` and the
project file's module targets. One step per (source, distro)."""

from __future__ import annotations

import argparse
import copy
from typing import TYPE_CHECKING

from pamconform import __version__, report
from pamconform.cli.console import Console
from pamconform.cli.targets import Step, list_steps, run_steps, shard_steps
from pamconform.core.preflight import check_report_dir
from pamconform.core.registry import Case
from pamconform.core.runner import CaseResult, TargetResult
from pamconform.core.verdicts import Verdict
from pamconform.protocols import Protocol

if TYPE_CHECKING:
    from pamconform.lab.module_target import ModuleSpec


def lab_module_step(name: str, spec: ModuleSpec, distro: str, protocol: Protocol,
                    cases: list[Case], args: argparse.Namespace, console: Console,
                    skip: bool = False) -> Step:
    """Build ``spec`` in a fresh lab of ``distro`` and run the cases (``skip``: the cases
    are listed SKIPPED, the lab not started: ``run --no-lab``)."""
    from pamconform.lab import module_run

    def check(cases: list[Case]) -> TargetResult:
        if skip:
            return skipped(name, "module", protocol, cases, console)
        console.line(f"== {name}: {len(cases)} {protocol.name} module cases (lab, {distro})")
        return module_run.run_module(copy.copy(spec), cases, name=name, distro=distro,
                                     keep=args.keep, strict=args.strict,
                                     login_timeout=getattr(args, "login_timeout", 20.0),
                                     say=console.line, progress=console.progress)

    return Step(name, "module", protocol.name, cases, check, lab=None if skip else distro,
                in_lab=not skip)


def skipped(name: str, kind: str, protocol: Protocol, cases: list[Case],
            console: Console) -> TargetResult:
    """A lab target under ``--no-lab``: in the report, every case SKIPPED."""
    console.line(f"== {name}: {len(cases)} {protocol.name} {kind} cases skipped (--no-lab)")
    why = f"not run: {name} lives in the lab and --no-lab"
    return TargetResult(name, kind, protocol.name,
                        [CaseResult(c, Verdict.SKIPPED, why, 0.0) for c in cases])


def run_sources(protocol: Protocol, specs: list[tuple[str, ModuleSpec]], distros: list[str],
                cases: list[Case], args: argparse.Namespace, console: Console) -> int:
    """``pamconform module SRC...``: each (named) source on each distro, one report."""
    from pamconform.lab import module_run

    steps = [lab_module_step(module_run.distro_target_name(name, distro, distros), spec,
                             distro, protocol, cases, args, console)
             for name, spec in specs for distro in distros]
    steps, shard = shard_steps(steps, args)
    if args.list:
        return list_steps(steps, console)
    check_report_dir(args.report)
    console.line(f"pamconform {__version__}: {len(cases)} {protocol.name} module cases "
                 f"against {', '.join(s.name for s in steps) or 'no target of this shard'}")

    def differences(results: list[TargetResult]) -> list[str]:
        if len(distros) < 2:
            return []
        return module_run.format_differences(module_run.distro_differences(results), distros)

    return run_steps(steps, args, console, report.Run(strict=args.strict, shard=shard),
                     after=differences)
