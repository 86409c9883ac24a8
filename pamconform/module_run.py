"""Runs the module suites: a lab container per module build, sshd and su inside it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from pamconform import loader, resources
from pamconform.lab import LabSession, connect, ensure_lab_image
from pamconform.module_target import ModuleSpec, ModuleTarget
from pamconform.registry import Case, all_cases
from pamconform.runner import Progress, TargetResult, run_target

MODULE_SUITES = {
    "redirector": ["redirector_module_e2e", "redirector_module_direct"],
    "transient-token": ["token_module_e2e"],
}


def module_cases(protocol: str) -> list[Case]:
    for suite in MODULE_SUITES[protocol]:
        loader.load_suite(suite)
    return all_cases(protocol=protocol, kind="module")


@contextmanager
def module_lab(
    spec: ModuleSpec,
    *,
    name: str,
    keep: bool = False,
    login_timeout: float = 20.0,
    say: Callable[[str], Any] = print,
) -> Iterator[ModuleTarget]:
    """A lab container with the module built, installed and wired into sshd and su.

    Raises EngineUnavailable (no engine), BuildFailed (the module's build failed).
    The container is removed on exit (unless ``keep``), on Ctrl-C and on SIGTERM.
    """
    from pamconform.direct_driver import driver

    client = connect()
    image = ensure_lab_image(client, resources.root(), progress=say)
    with LabSession(client, keep=keep) as session:
        box = session.container(image)
        say(f"lab container {box.name} ({image}, network none)")
        target = ModuleTarget(name, box, spec, login_timeout=login_timeout)
        target.install(progress=say)
        target.start_sshd()
        if spec.protocol == "redirector":
            target.server("reference")
            target.check_running()
        try:
            yield target
        finally:
            driver(target).stop_scenarios()
            if keep:
                say(f"--keep: container {box.name} left running")


def run_module(
    spec: ModuleSpec,
    cases: list[Case],
    *,
    name: str,
    keep: bool = False,
    strict: bool = False,
    login_timeout: float = 20.0,
    say: Callable[[str], Any] = print,
    progress: Progress | None = None,
) -> TargetResult:
    """Build the module in a fresh lab container and run the cases through sshd and su."""
    with module_lab(spec, name=name, keep=keep, login_timeout=login_timeout, say=say) as target:
        result = run_target(cases, target, kind="module", protocol=spec.protocol,
                            strict=strict, progress=progress)
        result.info.update(
            source=str(spec.src),
            build=spec.build,
            so=spec.so,
            args=spec.args,
            image=target.box.container.image.tags[0] if target.box.container.image.tags
            else "",
            pam_stacks=target.stacks(),
            lab_checks=target.lab_checks,
        )
    return result
