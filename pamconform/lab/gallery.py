"""The faulty servers of the test fixtures, as targets (only in a checkout)."""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType

from pamconform.core import resources
from pamconform.core.errors import UsageError
from pamconform.core.loader import import_path
from pamconform.lab.localserver import CommandFor


def fixtures_dir() -> Path:
    return resources.root() / "tests" / "fixtures"


def load() -> ModuleType:
    """The gallery module (``tests/fixtures/faulty_servers.py``)."""
    path = fixtures_dir() / "faulty_servers.py"
    if not path.is_file():
        raise UsageError("--gallery needs a source checkout (tests/fixtures is not installed)")
    return import_path("pamconform_faulty_servers", path)


def commands() -> dict[str, CommandFor]:
    """One command line builder per faulty server."""
    import os

    path = fixtures_dir() / "faulty_servers.py"
    out: dict[str, CommandFor] = {}
    for name in load().GALLERY:
        def command(sock: Path, creds: Path, name: str = name) -> list[str]:
            return [sys.executable, str(path), name, str(sock), str(creds),
                    "--allow-uid", str(os.getuid())]
        out[name] = command
    return out
