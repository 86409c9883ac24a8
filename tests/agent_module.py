"""The bundled batch agent (containers/agent/pam_agent.py) loaded as a module."""

from __future__ import annotations

import importlib.util
from typing import Any

from pamconform.core import resources


def load_agent(name: str = "pam_agent") -> Any:
    """A fresh module object of the agent script, registered under ``name``."""
    spec = importlib.util.spec_from_file_location(
        name, resources.containers_dir() / "agent" / "pam_agent.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
