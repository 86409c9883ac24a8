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

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

#: Where each name lives. They are imported on first use: the Docker SDK takes most of a
#: command's start-up, and commands without the lab (``diff``, ``audit``, ``server``) and
#: the local servers' helpers never need it.
_HOME = {
    **dict.fromkeys(("LABEL", "RUN_LABEL", "CommandResult", "ExecFailed", "LabContainer",
                     "LabSession", "cleanup_stale", "docker_exec_argv"), "containers"),
    **dict.fromkeys(("EngineUnavailable", "connect"), "engine"),
    **dict.fromkeys(("BASE_TAG", "LAB_REPO", "LabBuildError", "ensure_base",
                     "ensure_lab_image", "find_root", "lab_image_tag"), "images"),
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


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
