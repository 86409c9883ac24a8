"""Loads suite files by path, so suites need not be an importable package."""

from __future__ import annotations

import importlib.util
import sys
import threading
from pathlib import Path
from types import ModuleType

from pamconform.core import resources

_PREFIX = "pamconform_suite"


#: One import at a time: a module is in sys.modules before its body has run, so a second
#: thread loading the same suite would see it half-registered (cases missing).
_IMPORTING = threading.RLock()


def import_path(name: str, path: Path) -> ModuleType:
    """Import the file at ``path`` as module ``name``, once (later calls return it); safe
    to call from several threads."""
    with _IMPORTING:
        return _import_path(name, path)


def _import_path(name: str, path: Path) -> ModuleType:
    module = sys.modules.get(name)
    if module is not None:
        return module
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def load_file(path: Path) -> ModuleType:
    """Import one suite file once; its cases register themselves."""
    path = path.resolve()
    return import_path(f"{_PREFIX}.{path.parent.name}.{path.stem}", path)


def suite_files(directory: Path) -> list[Path]:
    """The suite files of one suite directory (``_``-prefixed helpers excluded)."""
    return sorted(
        p for p in directory.glob("*.py") if not p.name.startswith("_") and p.is_file()
    )


def load_suite(name: str) -> list[ModuleType]:
    """Load every file of a bundled suite, e.g. ``redirector_server``."""
    directory = resources.suites_dir() / name
    if not directory.is_dir():
        raise FileNotFoundError(f"no suite {name!r} under {resources.suites_dir()}")
    return [load_file(p) for p in suite_files(directory)]
