"""The lab's images: the base (no registry needed) and the content-addressed lab image."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import os
import signal
import subprocess
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from pamconform.core.errors import HarnessError
from pamconform.lab.distros import DEFAULT_DISTRO, DISTROS
from pamconform.lab.sdk import docker

BASE_REPO = "pamconform/base"
BASE_TAG = f"{BASE_REPO}:{DEFAULT_DISTRO}"
LAB_REPO = "pamconform/lab"
DOCKERFILE = "containers/lab/Dockerfile"
BASE_SCRIPT = "containers/base-image.sh"
#: Directories of the repository that make up the build context (and the hash).
CONTEXT_DIRS = ("containers/lab", "containers/agent", "modules", "servers")
#: Never sent to the engine: caches, VCS data and host build products (the image builds
#: the module itself; a host-built .so must not shadow that).
EXCLUDE_DIRS = frozenset(
    {"__pycache__", ".git", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".tox", "build"}
)
EXCLUDE_SUFFIXES = (".pyc", ".pyo", ".o", ".so", ".a", ".swp", "~", ".egg-info")
#: Bump to force a rebuild when the build recipe changes outside the hashed files.
HASH_VERSION = b"pamconform-lab-1"

#: The callback through which the lab reports progress (the CLI gives its console's).
Progress = Callable[[str], object]


def quiet(_line: str) -> None:
    """The default progress callback: the lab does not print."""


class LabBuildError(HarnessError, RuntimeError):
    """Building the base or the lab image failed."""


def find_root() -> Path:
    """The directory holding ``containers/``, ``modules/`` and ``servers/``.

    A source checkout (the repository root) or an installed package (``pamconform/bundle``).
    """
    here = Path(__file__).resolve()
    for cand in (here.parents[2], here.parents[1] / "bundle"):
        if (cand / DOCKERFILE).is_file():
            return cand
    raise LabBuildError(f"cannot find {DOCKERFILE} near {here}")


def check_distro(distro: str) -> str:
    """``distro`` if the lab supports it, else a LabBuildError naming the supported ones."""
    if distro not in DISTROS:
        raise LabBuildError(f"unsupported distro {distro!r} (supported: {', '.join(DISTROS)})")
    return distro


def base_tag(distro: str = DEFAULT_DISTRO) -> str:
    """``pamconform/base:<distro>``."""
    return f"{BASE_REPO}:{check_distro(distro)}"


# -- base image -----------------------------------------------------------------------------
def _has_image(client: docker.DockerClient, ref: str) -> bool:
    try:
        client.images.get(ref)
    except docker.errors.ImageNotFound:
        return False
    return True


def ensure_base(
    client: docker.DockerClient,
    *,
    distro: str = DEFAULT_DISTRO,
    root: Path | None = None,
    tag: str | None = None,
    progress: Progress = quiet,
    timeout: float = 1500,
) -> str:
    """Make sure the base of ``distro`` exists, running ``containers/base-image.sh`` if not.

    ``tag`` defaults to ``pamconform/base:<distro>``; it is returned. The script tags a
    local or pulled ``debian:<distro>-slim``, or debootstraps one (root, network to a
    Debian mirror). Bounded by ``timeout`` seconds.
    """
    tag = tag or base_tag(distro)
    check_distro(distro)
    if _has_image(client, tag):
        return tag
    script = (root or find_root()) / BASE_SCRIPT
    progress(f"base image {tag} missing: running {script} {distro} (a minute or two)")
    env = dict(os.environ, PAMCONFORM_BASE_TAG=tag)
    proc = subprocess.Popen(
        ["bash", str(script), distro],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    tail: list[str] = []

    def pump() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip()
            tail.append(line)
            del tail[:-30]
            progress(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        raise LabBuildError(f"{script} timed out after {timeout:g} s") from None
    except BaseException:
        os.killpg(proc.pid, signal.SIGTERM)
        raise
    finally:
        reader.join(timeout=5)
    if rc != 0 or not _has_image(client, tag):
        raise LabBuildError(f"{script} failed (exit {rc}):\n" + "\n".join(tail))
    return tag


# -- build context and hash -----------------------------------------------------------------
def _context_files(root: Path) -> Iterator[tuple[str, Path]]:
    for top in CONTEXT_DIRS:
        base = root / top
        if not base.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = sorted(
                d for d in dirnames if d not in EXCLUDE_DIRS and not d.endswith(".egg-info")
            )
            for fn in sorted(filenames):
                if fn.endswith(EXCLUDE_SUFFIXES):
                    continue
                path = Path(dirpath, fn)
                if path.is_file() and not _is_elf(path):
                    yield path.relative_to(root).as_posix(), path


def _is_elf(path: Path) -> bool:
    """Host-built binaries (test programs, objects) stay out: the image builds its own."""
    with path.open("rb") as f:
        return f.read(4) == b"\x7fELF"


def build_context(root: Path) -> tuple[bytes, str]:
    """A deterministic tar of the context directories and the sha256 of its content."""
    digest = hashlib.sha256(HASH_VERSION + b"\0")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel, path in sorted(_context_files(root)):
            data = path.read_bytes()
            mode = 0o755 if os.access(path, os.X_OK) else 0o644
            digest.update(f"{rel}\0{mode:o}\0{len(data)}\0".encode())
            digest.update(data)
            info = tarfile.TarInfo(rel)
            info.size, info.mode, info.mtime = len(data), mode, 0
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue(), digest.hexdigest()


def lab_image_tag(
    client: docker.DockerClient,
    root: Path,
    base: str | None = None,
    *,
    distro: str = DEFAULT_DISTRO,
) -> str:
    """The tag ``ensure_lab_image`` would use: distro, context hash and the base image's id."""
    base = base or base_tag(distro)
    _tar, digest = build_context(root)
    return _tag_for(digest, base, client.images.get(base).id, distro)


def _tag_for(context_digest: str, base: str, base_id: str, distro: str = DEFAULT_DISTRO) -> str:
    h = hashlib.sha256(f"{context_digest}\0{base}\0{base_id}".encode()).hexdigest()
    return f"{LAB_REPO}:{distro}-{h[:16]}"


def tag_distro(tag: str) -> str | None:
    """The distro of a ``pamconform/lab:<distro>-<hash>`` tag (None for other tags)."""
    _repo, _sep, version = tag.rpartition(":")
    distro, sep, _h = version.partition("-")
    return distro if sep and distro in DISTROS else None


# -- lab image ------------------------------------------------------------------------------
#: Serialises image builds between processes on one machine (e.g. pytest-xdist workers),
#: so the first run builds the base and lab images once instead of once per worker.
BUILD_LOCK = Path(tempfile.gettempdir()) / "pamconform-image-build.lock"


def ensure_lab_image(
    client: docker.DockerClient,
    root: Path,
    *,
    distro: str = DEFAULT_DISTRO,
    base: str | None = None,
    progress: Progress = quiet,
    timeout: float = 1800,
) -> str:
    """Build ``containers/lab/Dockerfile`` if needed; return ``pamconform/lab:<distro>-<hash>``.

    Builds are serialised across processes with a lock file (waiting at most ``timeout``).
    """
    with build_lock(timeout):
        return _ensure_lab_image(client, root, distro=distro, base=base,
                                 progress=progress, timeout=timeout)


@contextlib.contextmanager
def build_lock(timeout: float) -> Iterator[None]:
    """Hold :data:`BUILD_LOCK` (waiting at most ``timeout`` s) while building an image."""
    with open(BUILD_LOCK, "a") as lock:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise LabBuildError(f"another image build held {BUILD_LOCK} for "
                                        f"{timeout:g} s") from None
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _ensure_lab_image(
    client: docker.DockerClient,
    root: Path,
    *,
    distro: str,
    base: str | None,
    progress: Progress,
    timeout: float,
) -> str:
    """The unlocked body of :func:`ensure_lab_image`.

    The hash covers every file of the context (``containers/lab``, ``modules``,
    ``servers``) and the base image id, so the image is rebuilt exactly when one of
    them changes. ``base`` defaults to ``pamconform/base:<distro>`` (made by
    :func:`ensure_base` when missing); any other base is pulled if absent (it should be
    a release of ``distro``: the tag names the distro, the base decides the content).
    """
    root = Path(root)
    check_distro(distro)
    if not (root / DOCKERFILE).is_file():
        raise LabBuildError(f"no {DOCKERFILE} under {root}")
    base_ref = base or base_tag(distro)
    if base_ref == base_tag(distro):
        ensure_base(client, distro=distro, root=root, progress=progress)
    elif not _has_image(client, base_ref):
        progress(f"pulling {base_ref}")
        try:
            client.images.pull(base_ref)
        except docker.errors.APIError as exc:
            raise LabBuildError(f"cannot pull base {base_ref}: {exc}") from exc
    context, digest = build_context(root)
    tag = _tag_for(digest, base_ref, client.images.get(base_ref).id, distro)
    if _has_image(client, tag):
        return tag

    progress(f"building {tag} from {base_ref} ({len(context) // 1024} KiB context)")
    build_image(client, context, DOCKERFILE, tag, buildargs={"BASE": base_ref},
                labels={"pamconform": "1", "pamconform.lab.context": digest},
                progress=progress, timeout=timeout)
    removed = prune_lab_images(client, tag)  # older builds of this distro leave no data behind
    if removed:
        progress(f"removed {len(removed)} older lab image(s): {', '.join(removed)}")
    return tag


def build_image(
    client: docker.DockerClient,
    context: bytes,
    dockerfile: str,
    tag: str,
    *,
    buildargs: dict[str, str],
    labels: dict[str, str],
    progress: Progress,
    timeout: float,
) -> None:
    """Build ``tag`` from a tar ``context`` (no pull), streaming its log to ``progress``.

    Raises LabBuildError with the log's tail on failure or after ``timeout`` seconds.
    """
    start = time.monotonic()
    log: list[str] = []
    stream = client.api.build(
        fileobj=io.BytesIO(context),
        custom_context=True,
        dockerfile=dockerfile,
        tag=tag,
        buildargs=buildargs,
        labels=labels,
        rm=True,
        forcerm=True,
        pull=False,
        decode=True,
        timeout=timeout,
    )
    try:
        for chunk in stream:
            if "error" in chunk:
                detail = chunk.get("errorDetail", {}).get("message") or chunk["error"]
                raise LabBuildError(
                    f"building {tag} failed: {detail.strip()}\n" + "\n".join(log[-40:])
                )
            text = chunk.get("stream")
            if text:
                for line in text.splitlines():
                    if line.strip():
                        log.append(line)
                        progress(line)
            if time.monotonic() - start > timeout:
                raise LabBuildError(f"building {tag} took more than {timeout:g} s")
    finally:
        close = getattr(stream, "close", None)
        if close:
            close()
    if not _has_image(client, tag):
        raise LabBuildError(f"build finished but {tag} is missing:\n" + "\n".join(log[-40:]))
    progress(f"built {tag} in {time.monotonic() - start:.0f} s")


def prune_lab_images(client: docker.DockerClient, keep: str) -> list[str]:
    """Remove other ``pamconform/lab:*`` tags of ``keep``'s distro not used by any container.

    Images of other distros stay (a matrix run needs one per distro); return the removed.
    """
    removed = []
    distro = tag_distro(keep)
    for image in client.images.list(name=LAB_REPO):
        for t in image.tags:
            if t != keep and t.startswith(LAB_REPO + ":") and tag_distro(t) == distro:
                try:
                    client.images.remove(t, noprune=False)
                    removed.append(t)
                except docker.errors.APIError:
                    pass
    return removed
