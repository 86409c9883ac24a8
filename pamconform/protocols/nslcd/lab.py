"""The nslcd lab: an image variant of the lab image with slapd, nslcd, pynslcd and pam_ldap.

:func:`ensure_nslcd_image` builds ``containers/nslcd/Dockerfile`` FROM the lab image
(:func:`pamconform.lab.ensure_lab_image`), cached by a hash of ``containers/nslcd/`` and
the parent image id, labelled ``pamconform=1``. :func:`start_nslcd_lab` starts a container
(``--network none``) in a :class:`~pamconform.lab.LabSession`, runs the daemons with the
in-container script, and copies this protocol package in so :meth:`NslcdLab.ask` can make
exchanges with the project's own client from inside.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pamconform.lab import LabBuildError, LabContainer, LabSession, ensure_lab_image, find_root
from pamconform.lab.images import DEFAULT_DISTRO, build_image, build_lock
from pamconform.lab.sdk import docker

NSLCD_REPO = "pamconform/nslcd"
CONTEXT_DIR = "containers/nslcd"
DOCKERFILE = f"{CONTEXT_DIR}/Dockerfile"
HASH_VERSION = b"pamconform-nslcd-1"
#: The daemons under test and their sockets inside the container.
SOCKETS = {"nslcd": "/run/nslcd/socket", "pynslcd": "/run/pynslcd/socket"}
CONTROL = "pamconform-nslcd-lab"
#: The user both daemons run as (``uid`` in containers/nslcd/nslcd.conf).
LAB_DAEMON_USER = "nslcd"
#: Where this package is copied in the container, and its import name there.
PY_DIR = "/opt/pamconform/py"
PY_PACKAGE = "pamconform_nslcd"
_PACKAGE_FILES = ("__init__.py", "codec.py", "client.py", "driver.py", "probe.py")

Progress = Callable[[str], object]


def _quiet(_line: str) -> None:
    """The default progress callback: the lab does not print."""


def nslcd_context(root: Path) -> tuple[bytes, str]:
    """A deterministic tar of ``containers/nslcd/`` and the sha256 of its content."""
    digest = hashlib.sha256(HASH_VERSION + b"\0")
    buf = io.BytesIO()
    base = root / CONTEXT_DIR
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(p for p in base.rglob("*") if p.is_file()):
            if "__pycache__" in path.parts or path.name.endswith(("~", ".swp")):
                continue
            rel = path.relative_to(root).as_posix()
            data = path.read_bytes()
            mode = 0o755 if os.access(path, os.X_OK) else 0o644
            digest.update(f"{rel}\0{mode:o}\0{len(data)}\0".encode())
            digest.update(data)
            info = tarfile.TarInfo(rel)
            info.size, info.mode, info.mtime = len(data), mode, 0
            info.uname = info.gname = "root"
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue(), digest.hexdigest()


def ensure_nslcd_image(
    client: docker.DockerClient,
    root: Path | None = None,
    *,
    distro: str = DEFAULT_DISTRO,
    progress: Progress = _quiet,
    timeout: float = 1800,
) -> str:
    """Build the nslcd image if needed; return ``pamconform/nslcd:<distro>-<hash>``."""
    root = Path(root or find_root())
    if not (root / DOCKERFILE).is_file():
        raise LabBuildError(f"no {DOCKERFILE} under {root}")
    parent = ensure_lab_image(client, root, distro=distro, progress=progress, timeout=timeout)
    context, digest = nslcd_context(root)
    parent_id = client.images.get(parent).id
    key = hashlib.sha256(f"{digest}\0{parent_id}".encode()).hexdigest()
    tag = f"{NSLCD_REPO}:{distro}-{key[:16]}"
    with build_lock(timeout):
        if not _has_image(client, tag):
            progress(f"building {tag} from {parent}")
            build_image(client, context, DOCKERFILE, tag, buildargs={"PARENT": parent},
                        labels={"pamconform": "1", "pamconform.nslcd.context": digest},
                        progress=progress, timeout=timeout)
    return tag


def _has_image(client: docker.DockerClient, ref: str) -> bool:
    try:
        client.images.get(ref)
    except docker.errors.ImageNotFound:
        return False
    return True


@dataclass
class NslcdLab:
    """A running nslcd lab container with slapd, nslcd and pynslcd started."""

    box: LabContainer

    def control(self, command: str, timeout: float = 30) -> None:
        """Run ``pamconform-nslcd-lab <command>`` (start, stop-slapd, pause-slapd, …)."""
        result = self.box.run([CONTROL, command], timeout=timeout)
        if not result.ok:
            raise LabBuildError(f"{CONTROL} {command} failed: {result.err.strip()}")

    def ask(
        self,
        daemon: str,
        action: str,
        user: str,
        password: bytes | None = None,
        *,
        as_user: str = "root",
        timeout: float = 5,
    ) -> dict[str, Any]:
        """One exchange with ``daemon`` (``nslcd``/``pynslcd``) made inside the container.

        ``action`` is ``authc``, ``authz`` or ``sess_o``; the password goes on stdin.
        Returns the driver's JSON (see :mod:`pamconform.protocols.nslcd.driver`).
        """
        argv = ["python3", "-m", f"{PY_PACKAGE}.driver", "--socket", SOCKETS[daemon],
                "--timeout", f"{timeout:g}", action, user]
        result = self.box.run(argv, user=as_user, timeout=timeout + 5,
                               stdin=password if action == "authc" else None,
                               environment={"PYTHONPATH": PY_DIR})
        if not result.ok:
            raise LabBuildError(f"nslcd driver failed (exit {result.exit_code}): "
                                f"{result.err.strip()[-500:]}")
        out: dict[str, Any] = json.loads(result.out)
        return out

    def probe(self, plan: dict[str, Any], *, timeout: float) -> list[dict[str, Any]]:
        """Run a probe plan inside the container (see :mod:`.probe`); its results."""
        result = self.box.run(["python3", "-m", f"{PY_PACKAGE}.probe"], timeout=timeout,
                               stdin=json.dumps(plan).encode(),
                               environment={"PYTHONPATH": PY_DIR})
        if not result.ok:
            raise LabBuildError(f"nslcd probe failed (exit {result.exit_code}): "
                                f"{result.err.strip()[-500:]}")
        results: list[dict[str, Any]] = json.loads(result.out)["results"]
        return results


def start_nslcd_lab(session: LabSession, image: str) -> NslcdLab:
    """Start ``image`` in ``session`` (no network), its daemons, and copy the client in."""
    box = session.container(image)
    lab = NslcdLab(box)
    lab.control("start", timeout=60)
    here = Path(__file__).resolve().parent
    for name in _PACKAGE_FILES:
        box.put_file(f"{PY_DIR}/{PY_PACKAGE}/{name}", (here / name).read_bytes(), 0o644)
    return lab
