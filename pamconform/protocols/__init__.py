"""Protocol plug-ins: the one place the rest of pamconform learns which protocols exist.

A protocol is a package under ``pamconform/protocols/`` whose ``profile`` module calls
:func:`register` with a :class:`Protocol` (another distribution adds one through a
``pamconform.protocols`` entry point naming its profile module). The CLI, ``run``, the
pytest plugin, the fuzzer and the lab find protocols only through :func:`get` and
:func:`all_protocols`; what a protocol does beyond its description lives in modules named
by import strings (``"package.module:attr"``), loaded on first use with :func:`load`, so
importing the registry never imports the lab.

>>> get("redirector").rules
('R-S', 'R-M', 'STACK-')
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

#: The protocols shipped with pamconform (sub-packages of this one).
#: Entry-point group through which other packages add protocols.
ENTRY_POINT_GROUP = "pamconform.protocols"
#: The protocol a command uses when ``--protocol`` is not given.
DEFAULT = "redirector"


@dataclass(frozen=True)
class ReferenceModule:
    """The bundled reference PAM module of a protocol (a folder under ``modules/``)."""

    folder: str
    so: str
    #: PAM arguments as its README configures it; ``{socket}`` is the lab's socket path
    args: str
    #: the module's own default timeout (seconds): the R-M2 hang bound adds a margin to it
    default_timeout: float
    #: arguments ``pamconform run`` uses (a shorter timeout keeps the run fast)
    run_args: str | None = None


@dataclass(frozen=True)
class Protocol:
    """What a protocol plugs in.

    ``suites`` maps a target kind (``server``, ``module``, ``stack``) to the folders under
    ``suites/`` holding its cases. ``hooks`` names the module with the protocol's glue
    (command-line options, target construction, the up-front login check, the reference
    targets for ``run``); ``fuzz_model`` names its fuzz model for the one fuzz engine.
    """

    name: str
    title: str
    rules: tuple[str, ...]
    suites: Mapping[str, tuple[str, ...]]
    hooks: str
    fuzz_model: str | None = None
    reference_server: str | None = None
    reference_module: ReferenceModule | None = None
    #: other spellings accepted on the command line
    aliases: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    def suite_folders(self, kind: str) -> tuple[str, ...]:
        """The suite folders of one target kind (empty when the protocol has none)."""
        return tuple(self.suites.get(kind, ()))

    def load_hooks(self) -> Any:
        """The protocol's glue module (imported on first use)."""
        return load(self.hooks)


class UnknownProtocol(LookupError):
    """A protocol name no plug-in registered."""


_REGISTRY: dict[str, Protocol] = {}
_loaded = False


def register(protocol: Protocol) -> Protocol:
    """Add a protocol; a second one under the same name is an error."""
    for key in (protocol.name, *protocol.aliases):
        old = _REGISTRY.get(key)
        if old is not None and old is not protocol and old != protocol:
            raise ValueError(f"protocol {key!r} registered twice")
        _REGISTRY[key] = protocol
    return protocol


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    # Every sub-package with a profile module is a built-in protocol: a new protocol is
    # one folder, with no list to edit.
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.ispkg and importlib.util.find_spec(f"{__name__}.{info.name}.profile"):
            importlib.import_module(f"{__name__}.{info.name}.profile")
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        ep.load()


def get(name: str) -> Protocol:
    """The protocol called ``name`` (or one of its aliases)."""
    _load_all()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownProtocol(
            f"unknown protocol {name!r} (known: {', '.join(names())})") from None


def all_protocols() -> list[Protocol]:
    """Every registered protocol, once, by name."""
    _load_all()
    return sorted({id(p): p for p in _REGISTRY.values()}.values(), key=lambda p: p.name)


def names() -> list[str]:
    """The protocols' names (for ``--protocol`` choices)."""
    return [p.name for p in all_protocols()]


def with_suites(kind: str) -> list[Protocol]:
    """The protocols that have cases for one target kind (``server``, ``module``, ``stack``)."""
    return [p for p in all_protocols() if p.suite_folders(kind)]


def for_rule(rule: str) -> Protocol | None:
    """The protocol whose profile defines ``rule`` (e.g. ``R-S2``), if any."""
    for protocol in all_protocols():
        if any(rule.startswith(prefix) for prefix in protocol.rules):
            return protocol
    return None


def load(spec: str) -> Any:
    """Import ``"package.module"`` or ``"package.module:attribute"``."""
    module, _, attr = spec.partition(":")
    obj: Any = importlib.import_module(module)
    for part in filter(None, attr.split(".")):
        obj = getattr(obj, part)
    return obj
