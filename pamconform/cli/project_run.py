"""``pamconform run`` with a project file: its named targets as steps, its options as defaults.

Each target goes through the same input checks as ``pamconform server`` / ``module``
(its protocol options are parsed by their parsers); an error names the file and the key.
The command line wins over the file's ``[options]``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from pamconform import protocols
from pamconform.cli import common
from pamconform.cli.console import Console
from pamconform.cli.module_targets import lab_module_step, skipped
from pamconform.cli.targets import Step, unique_names
from pamconform.core import project as projectfile
from pamconform.core.errors import UsageError
from pamconform.core.options import SECONDS
from pamconform.core.project import Project, ProjectError, Target
from pamconform.core.registry import Case
from pamconform.core.runner import TargetResult, run_target
from pamconform.protocols import Protocol
from pamconform.protocols.hooks import foreign_server_option, hooks_of
from pamconform.report import known_findings


def find(args: argparse.Namespace) -> Project | None:
    """``--project FILE``, else the project file of the current directory, else None."""
    path = getattr(args, "project", None)
    if path is None:
        path = projectfile.find(Path.cwd())
        if path is None:
            return None
    project = projectfile.load(path)
    if args.gallery:
        raise UsageError(f"{project.path}: --gallery runs the bundled faulty servers; it "
                         "does not go with a project file's targets")
    return project


def apply_options(project: Project, args: argparse.Namespace) -> None:
    """The file's ``[options]`` where the command line did not give the option, each value
    checked by the option's own type (a timeout of -1 or 1e9 is refused as on the command
    line)."""
    actions = _run_actions()
    typed = getattr(args, "command_line", None) or []
    for key, value in project.options.items():
        action = actions.get(key)  # None: an option of the module command only
        flags = action.option_strings if action else ["--" + key.replace("_", "-")]
        check = action.type if action else SECONDS
        if any(word == flag or word.startswith(flag + "=") for word in typed for flag in flags):
            continue
        if key == "known_findings":
            value = known_findings.load(project.path.resolve().parent / value)
        elif callable(check) and not isinstance(value, (bool, list)):
            try:
                value = check(str(value))
            except (argparse.ArgumentTypeError, ValueError) as exc:
                raise ProjectError(f"{project.where(f'options.{key}')}: {exc}") from None
        setattr(args, key, value)


def _run_actions() -> dict[str, argparse.Action]:
    """``pamconform run``'s options by the attribute they set."""
    from pamconform.cli.main import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {a.dest: a for a in commands.choices["run"]._actions}


def distros(project: Project, args: argparse.Namespace) -> list[str]:
    """``--distro`` when given, else the file's ``distros``, else the default."""
    from pamconform.lab.distros import parse_distros

    typed = any(a == "--distro" or a.startswith("--distro=")
                for a in getattr(args, "command_line", []))
    if typed or project.distros is None:
        return parse_distros(args.distro)
    return parse_distros(",".join(project.distros))


def plan(project: Project, args: argparse.Namespace, console: Console) -> list[Step]:
    """The project's targets as steps, in the file's order (each module once per distro)."""
    steps: list[Step] = []
    for target in project.targets:
        protocol = _protocol(project, target)
        cases = common.protocol_cases(protocol, target.kind, args)
        if not cases:
            if not args.list and not common.in_lane(args):  # said once, by the run itself
                console.line(f"{target.name}: no {protocol.name} {target.kind} case "
                             "selected: not checked")
            continue
        if target.package is not None:
            steps.append(_package_step(project, target, protocol, cases, args, console))
        elif target.kind == "server":
            steps.append(_server_step(project, target, protocol, cases, args, console))
        else:
            steps += _module_steps(project, target, protocol, cases, args, console)
    return unique_names(steps)


def _protocol(project: Project, target: Target) -> Protocol:
    name = target.protocol or project.protocol or protocols.DEFAULT
    key = f"targets.{target.name}.protocol" if target.protocol else "protocol"
    try:
        protocol = protocols.get(name)
    except protocols.UnknownProtocol:
        raise ProjectError(f"{project.where(key)}: unknown protocol {name!r} (known: "
                           f"{', '.join(protocols.names())})") from None
    if protocol not in protocols.with_suites(target.kind):
        raise ProjectError(f"{project.where(key)}: {protocol.name} has no {target.kind} cases")
    return protocol


def _argv(target: Target) -> list[str]:
    """The target's protocol options as command-line flags."""
    argv: list[str] = []
    for key, value in target.options.items():
        flag = "--" + key.replace("_", "-")
        for one in value if isinstance(value, list) else [value]:
            if one is True:
                argv.append(flag)
            elif one is not False:
                argv += [flag, str(one)]
    return argv


#: ``server`` options a target's own keys set (socket, protocol, name, package).
TARGET_KEY_OPTIONS = frozenset({"socket", "protocol", "name", "lab_package"})
#: Options of ``run`` a server target may still set for itself.
TARGET_OWN_OPTIONS = frozenset({"timeout", "idle_limit"})


def _parse(project: Project, target: Target, argv: list[str]) -> argparse.Namespace:
    """``argv`` (a subcommand's) parsed; each of the target's options must be one of that
    subcommand's own (no abbreviation) that a target uses, and an error never shows a
    value."""
    from pamconform.cli.main import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    own = commands.choices[argv[0]]._option_string_actions
    # in a target's ``options`` an option of ``run`` would be ignored
    run_options = {a.dest for a in commands.choices["run"]._actions} - TARGET_OWN_OPTIONS
    for key in target.options:
        where = project.where(f"targets.{target.name}.options.{key}")
        if "--" + key.replace("_", "-") not in own:
            raise ProjectError(f"{where}: not an option of pamconform {argv[0]}")
        if argv[0] == "module":  # a module target is its build, so, args and protocol
            raise ProjectError(f"{where}: a module target takes no options (give build, so, "
                               "args or collect_password; run options go in [options])")
        dest = key.replace("-", "_")
        if dest in TARGET_KEY_OPTIONS:
            raise ProjectError(f"{where}: set by the target's own keys (socket, protocol, "
                               "name, package), not an option")
        if dest in run_options:
            raise ProjectError(f"{where}: an option of the whole run: put it in [options]")
    try:
        return parser.parse_args(argv)
    except UsageError as exc:
        raise ProjectError(f"{project.where(f'targets.{target.name}')}: "
                           f"{_scrub(str(exc), target)}") from None


def _scrub(text: str, target: Target) -> str:
    """``text`` without the target's option values and credentials file name (an error
    line names the key; a value may be a secret put in the wrong place)."""
    values = [str(v) for value in target.options.values()
              for v in (value if isinstance(value, list) else [value])
              if isinstance(v, str) and v]
    if target.credentials_file is not None:
        values.append(str(target.credentials_file))
    for value in sorted(values, key=len, reverse=True):
        text = text.replace(value, "(value not shown)")
    return text


def _server_step(project: Project, target: Target, protocol: Protocol, cases: list[Case],
                 args: argparse.Namespace, console: Console) -> Step:
    assert target.path is not None
    argv = ["server", str(target.path), "--protocol", protocol.name, "--name", target.name]
    if target.credentials_file is not None:
        argv += ["--credentials-file", str(target.credentials_file)]
    ns = _parse(project, target, argv + _argv(target))
    for key in ("timeout", "idle_limit"):  # the target's own, else the run's
        if key not in target.options and key.replace("_", "-") not in target.options:
            setattr(ns, key, getattr(args, key))
    if foreign := foreign_server_option(protocol.name, ns):
        raise ProjectError(f"{project.where(f'targets.{target.name}.options')}: {foreign[0]} "
                           f"only for {foreign[1]} targets")
    ns.socket, ns.name = target.path, target.name
    if target.credentials_env is not None:
        if not os.environ.get(target.credentials_env):
            raise ProjectError(f"{project.where(f'targets.{target.name}.credentials_env')}: "
                               f"${target.credentials_env} is not set (USER:PASSWORD lines)")
        ns.credentials_env = target.credentials_env
    hooks = hooks_of(protocol)
    try:
        opener = hooks.server_target(ns)  # the input checked, nothing started yet
    except UsageError as exc:
        raise ProjectError(f"{project.where(f'targets.{target.name}')}: "
                           f"{_scrub(str(exc), target)}") from None

    def check(cases: list[Case]) -> TargetResult:
        console.line(f"== {target.name}: {len(cases)} {protocol.name} server cases "
                     f"({target.path})")
        with opener as opened:
            hooks.check_login(opened)
            return run_target(cases, opened, kind="server", protocol=protocol.name,
                              strict=args.strict, progress=console.progress)

    return Step(target.name, "server", protocol.name, cases, check)


def _package_step(project: Project, target: Target, protocol: Protocol, cases: list[Case],
                  args: argparse.Namespace, console: Console) -> Step:
    assert target.package is not None
    try:
        pkg = common.lab_package(protocol, target.kind, target.package)
    except UsageError as exc:
        raise ProjectError(f"{project.where(f'targets.{target.name}.package')}: {exc}") from None

    def check(cases: list[Case]) -> TargetResult:
        if args.no_lab:
            return skipped(target.name, target.kind, protocol, cases, console)
        console.line(f"== {target.name}: {len(cases)} {protocol.name} {pkg.kind} cases "
                     f"(lab, package {pkg.package})")
        return common.run_lab_package(pkg, protocol, cases, args, console, target.name)

    return Step(target.name, target.kind, protocol.name, cases, check,
                lab=None if args.no_lab else f"{protocol.name} ({pkg.package})",
                in_lab=not args.no_lab)


def _module_steps(project: Project, target: Target, protocol: Protocol, cases: list[Case],
                  args: argparse.Namespace, console: Console) -> list[Step]:
    from pamconform.cli.run import reference_module_spec
    from pamconform.lab import module_run
    from pamconform.lab.distros import parse_distros
    from pamconform.lab.module_target import ModuleSpec

    where = project.where(f"targets.{target.name}")
    ref = protocol.reference_module
    if ref is None:
        raise ProjectError(f"{where}: {protocol.name} has no module built from source")
    if target.reference:
        if target.options:  # as for a module built from source: none is used
            _parse(project, target, ["module", "--protocol", protocol.name, *_argv(target)])
        spec = reference_module_spec(protocol, args.hang_bound)
    else:
        assert target.path is not None
        # the protocol's module options, checked by the module command's parser
        _parse(project, target, ["module", str(target.path), "--protocol", protocol.name,
                                 *_argv(target)])
        spec = ModuleSpec(target.path, target.build or "make", target.so or ref.so,
                          ref.args if target.args is None else target.args, protocol.name,
                          target.collect_password, hang_bound=args.hang_bound)
        try:
            spec.validate()
        except UsageError as exc:
            raise ProjectError(f"{where}: {_scrub(str(exc), target)}") from None
    try:
        labs = parse_distros(",".join(target.distros)) if target.distros else \
            distros(project, args)
    except UsageError as exc:
        raise ProjectError(f"{where}.distros: {exc}") from None
    steps = []
    for distro in labs:
        name = module_run.distro_target_name(target.name, distro, labs)
        steps.append(lab_module_step(name, spec, distro, protocol, cases, args, console,
                                     skip=args.no_lab))
    return steps
