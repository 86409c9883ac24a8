"""Where the bundled suites, servers, modules and container files live.

In a checkout (or an editable install) they are the top-level directories of the
repository; in a wheel they are packaged under ``pamconform/bundle/``.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parents[1]


def root() -> Path:
    """The directory holding ``suites/``, ``servers/``, ``modules/`` and ``containers/``."""
    checkout = _PACKAGE.parent
    if (checkout / "suites").is_dir() and (checkout / "servers").is_dir():
        return checkout
    return _PACKAGE / "bundle"


def suites_dir() -> Path:
    return root() / "suites"


def servers_dir() -> Path:
    return root() / "servers"


def modules_dir() -> Path:
    return root() / "modules"


def containers_dir() -> Path:
    return root() / "containers"
