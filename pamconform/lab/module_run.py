"""Runs the module suites: a lab container per module build, sshd and su inside it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pamconform import protocols
from pamconform.core import loader, resources
from pamconform.core.interrupts import Interrupted
from pamconform.core.registry import Case, all_cases
from pamconform.core.runner import Progress, TargetResult, run_target
from pamconform.lab import LabContainer, LabSession, connect, ensure_lab_image, images
from pamconform.lab.asan_build import build_before
from pamconform.lab.distros import DEFAULT_DISTRO
from pamconform.lab.images import quiet
from pamconform.lab.module_target import ModuleSpec, ModuleTarget, uses_lab_socket


def module_cases(protocol: str) -> list[Case]:
    """The module cases of ``protocol`` (its registered module suites, loaded)."""
    for suite in protocols.get(protocol).suite_folders("module"):
        loader.load_suite(suite)
    return all_cases(protocol=protocol, kind="module")


# -- release matrix (--distro) ----------------------------------------------------------------
def distro_target_name(name: str, distro: str, distros: list[str]) -> str:
    """``name@distro``; a plain default run (bookworm only) keeps the bare name."""
    return name if distros == [DEFAULT_DISTRO] else f"{name}@{distro}"


def lab_versions(box: LabContainer, distro: str) -> dict[str, str]:
    """The release and the Linux-PAM and OpenSSH package versions inside a lab container."""
    out = box.run("cat /etc/debian_version; dpkg-query -W -f "
                  "'${Package} ${Version}\\n' libpam0g openssh-server", timeout=15).out
    lines = out.splitlines()
    pkgs = dict(line.split(" ", 1) for line in lines[1:] if " " in line)
    return {
        "name": distro,
        "debian_version": lines[0].strip() if lines else "",
        "linux_pam": pkgs.get("libpam0g", ""),
        "openssh": pkgs.get("openssh-server", ""),
    }


def distro_differences(results: list[TargetResult]) -> list[dict[str, Any]]:
    """Cases whose verdict differs between the releases of one target (``name@distro``).

    Each difference is attached to the targets it concerns as ``info["distro_differences"]``
    (every target of a multi-distro group gets the list, empty when none) and returned.
    """
    groups: dict[str, list[TargetResult]] = {}
    for t in results:
        distro = (t.info.get("distro") or {}).get("name")
        base, sep, suffix = t.name.rpartition("@")
        if distro and sep and suffix == distro:
            groups.setdefault(base, []).append(t)
    found: list[dict[str, Any]] = []
    for base, targets in groups.items():
        if len(targets) < 2:
            continue
        diffs: list[dict[str, Any]] = []
        by_distro = {t.info["distro"]["name"]: {r.case.id: r for r in t.results}
                     for t in targets}
        order = list(dict.fromkeys(cid for t in targets for cid in
                                   (r.case.id for r in t.results)))
        for cid in order:
            present = {d: rs[cid] for d, rs in by_distro.items() if cid in rs}
            if len(present) < 2 or len({str(r.verdict) for r in present.values()}) < 2:
                continue
            first = next(iter(present.values()))
            diffs.append({
                "target": base,
                "case": cid,
                "rule": first.case.rule,
                "verdicts": {d: str(r.verdict) for d, r in present.items()},
                "messages": {d: r.message for d, r in present.items()},
            })
        for t in targets:
            t.info["distro_differences"] = diffs
        found += diffs
    return found


def format_differences(diffs: list[dict[str, Any]], distros: list[str]) -> list[str]:
    """Console lines for ``distro_differences``."""
    if not diffs:
        return [f"release matrix ({', '.join(distros)}): no case's verdict differs"]
    lines = [f"release matrix ({', '.join(distros)}): {len(diffs)} case(s) differ"]
    for d in diffs:
        verdicts = ", ".join(f"{k} {v}" for k, v in d["verdicts"].items())
        lines.append(f"  {d['target']}: {d['case']} [{d['rule']}]: {verdicts}")
        for k, msg in d["messages"].items():
            if msg:
                lines.append(f"      {k}: {msg[:150]}")
    return lines


@contextmanager
def module_lab(
    spec: ModuleSpec,
    *,
    name: str,
    distro: str = DEFAULT_DISTRO,
    keep: bool = False,
    login_timeout: float = 20.0,
    say: images.Progress = quiet,
) -> Iterator[ModuleTarget]:
    """A lab container of ``distro`` with the module built, installed and wired into sshd and su.

    Raises EngineUnavailable (no engine), BuildFailed (the module's build failed).
    The container is removed on exit (unless ``keep``), on Ctrl-C and on SIGTERM.
    """
    from pamconform.drivers.direct import driver

    client = connect()
    image = ensure_lab_image(client, resources.root(), distro=distro, progress=say)
    with LabSession(client, keep=keep) as session:
        box = session.container(image)
        say(f"lab container {box.name} ({image}, network none)")
        target = ModuleTarget(name, box, spec, login_timeout=login_timeout)
        target.install(progress=say)
        target.start_sshd()
        if uses_lab_socket(spec.protocol):
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
    distro: str = DEFAULT_DISTRO,
    keep: bool = False,
    strict: bool = False,
    login_timeout: float = 20.0,
    say: images.Progress = quiet,
    progress: Progress | None = None,
) -> TargetResult:
    """Build the module in a fresh lab container of ``distro`` and run the cases through
    sshd and su; ``info["distro"]`` records the release and its Linux-PAM and OpenSSH."""
    with module_lab(spec, name=name, distro=distro, keep=keep, login_timeout=login_timeout,
                    say=say) as target:
        versions = lab_versions(target.box, distro)
        say(f"{distro}: Debian {versions['debian_version']}, libpam0g {versions['linux_pam']}, "
            f"openssh-server {versions['openssh']}")
        build_before(target, cases, say)
        try:
            result = run_target(cases, target, kind="module", protocol=spec.protocol,
                                strict=strict, progress=progress)
        except Interrupted as stopped:
            if isinstance(stopped.partial, TargetResult):
                stopped.partial.info.update(distro=versions, source=str(spec.src),
                                            build=spec.build, so=spec.so, args=spec.args)
            raise
        result.info.update(
            distro=versions,
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
