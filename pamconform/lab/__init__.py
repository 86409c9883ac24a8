"""The pamconform lab: a Docker engine, the lab image and throw-away containers.

Typical use::

    from pamconform.lab import connect, ensure_lab_image, LabSession

    client = connect()
    image = ensure_lab_image(client, repo_root)
    with LabSession(client) as session:
        box = session.container(image)
        result = box.run(["id"], timeout=5)        # a CommandResult
        result = box.run('test -e "$1"', args=[path], timeout=5)   # a script, no quoting
        argv = box.exec_argv(["su", "bob"], tty=True, timeout=20)  # for pexpect

Progress goes to a callback the caller gives (``say``/``progress``); the lab never prints.
"""

from pamconform.lab.containers import (
    LABEL,
    RUN_LABEL,
    CommandResult,
    ExecFailed,
    LabContainer,
    LabSession,
    cleanup_stale,
    docker_exec_argv,
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
    "CommandResult",
    "EngineUnavailable",
    "ExecFailed",
    "LabBuildError",
    "LabContainer",
    "LabSession",
    "cleanup_stale",
    "connect",
    "docker_exec_argv",
    "ensure_base",
    "ensure_lab_image",
    "find_root",
    "lab_image_tag",
]
