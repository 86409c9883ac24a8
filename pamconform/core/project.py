"""The project file: the named targets ``pamconform run`` checks, and its options.

``pamconform.toml``, or the ``[tool.pamconform]`` table of ``pyproject.toml``::

    protocol = "NAME"                 # the targets' protocol unless a target names one
    distros = ["bookworm"]            # the labs module targets run on

    [options]                         # run options (the command line wins)
    strict = false
    cases = ["PREFIX.*"]

    [targets.my-auth]                 # a server on a UNIX socket
    kind = "server"
    socket = "/run/myauth/socket"
    credentials_env = "MYAUTH_LOGINS" # or credentials_file = "ci/logins" (USER:PASSWORD lines)

    [targets.my-module]               # a module built from source in the lab
    kind = "module"
    source = "."
    so = "pam_x.so"
    args = "{socket}"

This module only reads and checks the file (pure: no protocol, no Docker). A secret is
never taken inline: a target names the file or the environment variable that holds its
logins. Every problem is a :class:`ProjectError`: one line naming the file and the key.
"""

from __future__ import annotations

import contextlib
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pamconform.core import jsonfile
from pamconform.core.errors import UsageError
from pamconform.core.jsonfile import JsonFileError

FILE_NAME = "pamconform.toml"
#: A project file (or pyproject.toml) larger than this is refused.
MAX_BYTES = 1 << 20
PYPROJECT = "pyproject.toml"
KINDS = ("server", "module")
#: Keys that would hold a secret in the file itself: refused, whatever their value.
SECRET_KEYS = frozenset({"credentials", "password", "passwords", "login", "logins", "token",
                         "secret"})
#: Protocol options that take a secret on the command line (``--credentials``,
#: ``--token``...): refused in ``[targets.NAME.options]``, whatever their value.
SECRET_OPTIONS = frozenset(k.replace("_", "-") for k in SECRET_KEYS) | {"user-password"}
#: What a target's option name may hold (the command-line option without ``--``).
_OPTION_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")
#: Run options ``[options]`` takes, and the type each must have.
OPTION_TYPES: dict[str, tuple[type, ...]] = {
    "strict": (bool,), "timeout": (int, float), "idle_limit": (int, float),
    "hang_bound": (int, float), "login_timeout": (int, float), "cases": (list,),
    "exclude_cases": (list,), "known_findings": (str,), "keep": (bool,),
}
_TARGET_KEYS = {
    "server": {"kind", "protocol", "socket", "package", "credentials_file", "credentials_env",
               "options"},
    "module": {"kind", "protocol", "source", "package", "reference", "build", "so", "args",
               "collect_password", "distros", "options"},
}
Scalar = str | bool | int | float


class ProjectError(UsageError):
    """The project file is invalid (exit 2): ``FILE: KEY: problem``."""


@dataclass(frozen=True)
class Target:
    """One named target of the project file."""

    name: str
    kind: str
    protocol: str | None = None
    #: a server's socket, or a module's source directory (absolute)
    path: Path | None = None
    #: a Debian package whose target lives in the protocol's lab
    package: str | None = None
    #: the protocol's bundled reference module
    reference: bool = False
    credentials_file: Path | None = None
    credentials_env: str | None = None
    build: str | None = None
    so: str | None = None
    args: str | None = None
    collect_password: bool = False
    distros: tuple[str, ...] | None = None
    #: the protocol's own options of ``pamconform server``/``module``, without ``--``
    options: dict[str, Scalar | list[Scalar]] = field(default_factory=dict)


@dataclass(frozen=True)
class Project:
    """A project file, read and checked."""

    path: Path
    protocol: str | None
    distros: tuple[str, ...] | None
    options: dict[str, Any]
    targets: tuple[Target, ...]

    def where(self, key: str) -> str:
        """``FILE: KEY`` for an error line about ``key``."""
        return f"{self.path}: {key}"


def find(directory: Path) -> Path | None:
    """The project file in ``directory``: ``pamconform.toml``, else a ``pyproject.toml``
    with a ``[tool.pamconform]`` table, else None."""
    own = directory / FILE_NAME
    if own.is_file():
        return own
    pyproject = directory / PYPROJECT
    if pyproject.is_file():
        try:
            data = tomllib.loads(jsonfile.read_text(pyproject, max_bytes=MAX_BYTES))
        except (JsonFileError, tomllib.TOMLDecodeError):
            # not ours to judge, unless it speaks of us: then load() says what is wrong,
            # rather than the run quietly checking the bundled targets instead
            with contextlib.suppress(OSError), open(pyproject, "rb") as f:
                if b"pamconform" in f.read(MAX_BYTES):
                    return pyproject
            return None
        if isinstance(data.get("tool"), dict) and "pamconform" in data["tool"]:
            return pyproject
    return None


def load(path: Path) -> Project:
    """Read and check a project file (``ProjectError`` on any problem)."""
    try:
        data = tomllib.loads(jsonfile.read_text(path, max_bytes=MAX_BYTES))
    except JsonFileError as exc:
        raise ProjectError(str(exc)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ProjectError(f"{path}: not valid TOML: {exc}") from None
    prefix = ""
    if path.name == PYPROJECT:
        tool = data.get("tool")
        if not isinstance(tool, dict) or not isinstance(tool.get("pamconform"), dict):
            raise ProjectError(f"{path}: tool.pamconform: missing (a table of targets)")
        data, prefix = tool["pamconform"], "tool.pamconform."
    return parse(data, path, prefix)


def parse(data: dict[str, Any], path: Path, prefix: str = "") -> Project:
    """Check the file's table (``prefix`` names it in errors) and build the project."""
    def err(key: str, problem: str) -> ProjectError:
        return ProjectError(f"{path}: {prefix}{key}: {problem}")

    unknown = sorted(set(data) - {"protocol", "distros", "options", "targets"})
    if unknown:
        raise err(unknown[0], "unknown key (known: protocol, distros, options, targets)")
    protocol = _opt_str(data, "protocol", err)
    distros = _distros(data.get("distros"), "distros", err)
    options = data.get("options", {})
    if not isinstance(options, dict):
        raise err("options", "expected a table")
    for key, value in options.items():
        if key in SECRET_KEYS:
            raise err(f"options.{key}", _INLINE)
        if key not in OPTION_TYPES:
            raise err(f"options.{key}", f"unknown option (known: {', '.join(OPTION_TYPES)})")
        if not isinstance(value, OPTION_TYPES[key]) or (
                isinstance(value, bool) and bool not in OPTION_TYPES[key]):
            raise err(f"options.{key}", f"expected {_type_name(OPTION_TYPES[key])}")
        if isinstance(value, list) and not all(isinstance(v, str) for v in value):
            raise err(f"options.{key}", "expected a list of strings")
    targets = data.get("targets")
    if not isinstance(targets, dict) or not targets:
        raise err("targets", "expected a table of named targets ([targets.NAME])")
    base = path.resolve().parent
    out = tuple(_target(name, spec, base, err) for name, spec in targets.items())
    return Project(path, protocol, distros, dict(options), out)


_INLINE = ("an inline secret is refused: name the file (credentials_file) or the "
           "environment variable (credentials_env) that holds the logins")


def _type_name(types: tuple[type, ...]) -> str:
    names = {bool: "true or false", int: "a number", float: "a number", list: "a list",
             str: "a string"}
    return " or ".join(dict.fromkeys(names[t] for t in types))


def _opt_str(table: dict[str, Any], key: str, err: Any, where: str = "") -> str | None:
    value = table.get(key)
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise err(where + key, "expected a non-empty string")
    return value


def _distros(value: Any, key: str, err: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value or not all(
            isinstance(v, str) and v for v in value):
        raise err(key, "expected a non-empty list of Debian releases, e.g. [\"bookworm\"]")
    return tuple(value)


def _target(name: str, spec: Any, base: Path, err: Any) -> Target:
    key = f"targets.{name}"
    if not isinstance(spec, dict):
        raise err(key, "expected a table")
    if not name or any(c.isspace() for c in name):
        raise err(key, "a target name without spaces")
    secret = sorted(SECRET_KEYS & set(spec))
    if secret:
        raise err(f"{key}.{secret[0]}", _INLINE)
    kind = spec.get("kind")
    if kind not in KINDS:
        raise err(f"{key}.kind", f"expected one of {', '.join(KINDS)}")
    unknown = sorted(set(spec) - _TARGET_KEYS[kind])
    if unknown:
        raise err(f"{key}.{unknown[0]}", f"not a key of a {kind} target (known: "
                  f"{', '.join(sorted(_TARGET_KEYS[kind]))})")
    where = f"{key}."
    strings = {k: _opt_str(spec, k, err, where) for k in
               ("protocol", "socket", "source", "package", "credentials_file",
                "credentials_env", "build", "so")}
    args = spec.get("args")
    if args is not None and not isinstance(args, str):
        raise err(f"{key}.args", "expected a string")
    for flag in ("reference", "collect_password"):
        if not isinstance(spec.get(flag, False), bool):
            raise err(f"{key}.{flag}", "expected true or false")
    options = spec.get("options", {})
    if not isinstance(options, dict):
        raise err(f"{key}.options", "expected a table")
    for opt, value in options.items():
        if not _OPTION_NAME.fullmatch(opt):  # the name itself may hold a secret: not shown
            raise err(f"{key}.options", "an option name is lower-case letters, digits, - "
                      "and _ (a command-line option without --)")
        if opt.replace("_", "-") in SECRET_OPTIONS:
            raise err(f"{key}.options.{opt}", _INLINE)
        if not isinstance(value, str | bool | int | float | list):
            raise err(f"{key}.options.{opt}", "expected a string, number, true/false or list")
    where_from = [k for k in ("socket", "source", "package") if strings.get(k)]
    if spec.get("reference"):
        where_from.append("reference")
    wanted = "socket or package" if kind == "server" else "source, package or reference = true"
    if len(where_from) != 1:
        raise err(key, f"a {kind} target needs exactly one of {wanted}"
                  + (f" (has {', '.join(where_from)})" if where_from else ""))
    env = strings["credentials_env"]
    if env is not None and not env.replace("_", "").isalnum():
        raise err(f"{key}.credentials_env", "the NAME of an environment variable (letters, "
                  "digits, _), never its value")
    if env and strings["credentials_file"]:
        raise err(f"{key}", "credentials_file or credentials_env, not both")
    if kind == "server" and strings["package"] and (env or strings["credentials_file"]):
        raise err(f"{key}", "a package target uses the lab's own accounts: no credentials")
    build_keys = [k for k in ("build", "so", "args") if spec.get(k) is not None]
    if build_keys and not strings["source"]:
        raise err(f"{key}.{build_keys[0]}", "only for a module built from source")

    def resolve(value: str | None) -> Path | None:
        return None if value is None else (base / value).resolve()

    return Target(
        name=name, kind=kind, protocol=strings["protocol"],
        path=resolve(strings["socket"] or strings["source"]), package=strings["package"],
        reference=bool(spec.get("reference", False)),
        credentials_file=resolve(strings["credentials_file"]), credentials_env=env,
        build=strings["build"], so=strings["so"], args=args,
        collect_password=bool(spec.get("collect_password", False)),
        distros=_distros(spec.get("distros"), f"{key}.distros", err), options=dict(options),
    )
