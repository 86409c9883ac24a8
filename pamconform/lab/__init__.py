"""The pamconform lab: a Docker engine, the lab image and throw-away containers.

Typical use::

    from pamconform.lab import connect, ensure_lab_image, LabSession

    client = connect()
    image = ensure_lab_image(client, repo_root)
    with LabSession(client) as session:
        box = session.container(image)
        print(box.exec(["id"], timeout=5).stdout)
"""

from pamconform.lab.containers import (
    LABEL,
    RUN_LABEL,
    ExecFailed,
    ExecResult,
    LabContainer,
    LabSession,
    cleanup_stale,
)
from pamconform.lab.engine import EngineUnavailable, connect
from pamconform.lab.images import (
    BASE_TAG,
    LAB_REPO,
    LabBuildError,
    ensure_base,
    ensure_lab_image,
    find_root,
    lab_image_tag,
)

__all__ = [
    "BASE_TAG",
    "LABEL",
    "LAB_REPO",
    "RUN_LABEL",
    "EngineUnavailable",
    "ExecFailed",
    "ExecResult",
    "LabBuildError",
    "LabContainer",
    "LabSession",
    "cleanup_stale",
    "connect",
    "ensure_base",
    "ensure_lab_image",
    "find_root",
    "lab_image_tag",
]
