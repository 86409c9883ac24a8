"""The Docker SDK (and the ``requests`` it raises through), loaded on first use.

It takes most of a command's start-up (~0.3 s), and most commands never reach the
engine: listing cases, checking a server socket, ``diff``, ``merge``, bad input. The
modules of the lab name ``docker.errors.NotFound`` and the like as usual; the packages
are imported when such a name is first looked up, which is after ``connect()``.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType
from typing import TYPE_CHECKING


def lazy(name: str) -> ModuleType:
    """The module ``name``: the one imported already, or one that imports on first use."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module


if TYPE_CHECKING:
    import docker
    import docker.errors
    import requests
    import requests.exceptions
else:
    docker = lazy("docker")
    requests = lazy("requests")

__all__ = ["docker", "requests"]
