"""Finding files without secrets that still replay.

The byte fields of a finding (``chunks_hex``, ``setup_hex``, ``valid_hex`` and the
chunks of ``concurrent_hex``) hold requests made of the run's logins. On disk each is
hex when it holds no password, else a template: hex runs and references to a login's
password (``{"password_of": "alice", "login": 1, "bytes": 6, "slice": [0, 5]}``, see
:meth:`pamconform.core.redaction.Redactor.template`). Loading resolves the references from
the logins given then (``--credentials`` of the replay, the target's credentials of a
regression case). Every other string is redacted; files are private (0600, in 0700
directories).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pamconform.core import jsonfile, privatefiles
from pamconform.core.redaction import current, resolve

T = TypeVar("T")

#: Fields holding lists of byte strings (hex, or templates on disk).
BYTE_LISTS = ("chunks_hex", "setup_hex", "valid_hex")


def _map_bytes(data: dict[str, Any], each: Callable[[Any], Any]) -> dict[str, Any]:
    out = dict(data)
    for key in BYTE_LISTS:
        if isinstance(out.get(key), list):
            out[key] = [each(v) for v in out[key]]
    if isinstance(out.get("concurrent_hex"), list):
        out["concurrent_hex"] = [_map_bytes(c, each) if isinstance(c, dict) else c
                                 for c in out["concurrent_hex"]]
    return out


def to_file(data: dict[str, Any]) -> dict[str, Any]:
    """A finding's dict as it is written: passwords as references, text redacted."""
    redactor = current()
    templated = _map_bytes(data, lambda h: redactor.template(bytes.fromhex(h))
                           if isinstance(h, str) else h)
    kept = {k: templated.pop(k) for k in (*BYTE_LISTS, "concurrent_hex") if k in templated}
    out: dict[str, Any] = redactor.tree(templated)
    if "concurrent_hex" in kept:
        kept["concurrent_hex"] = [
            {k: (v if k in BYTE_LISTS else redactor.tree(v)) for k, v in c.items()}
            if isinstance(c, dict) else c for c in kept["concurrent_hex"]]
    out.update(kept)
    return out


def from_file(data: dict[str, Any], logins: Sequence[tuple[bytes, bytes]]) -> dict[str, Any]:
    """A finding's dict as read, with every template resolved to hex.

    Raises :class:`pamconform.core.redaction.MissingLogin` (a ValueError) naming the login
    whose password a template needs and ``logins`` lacks.
    """
    return _map_bytes(data, lambda t: t if isinstance(t, str) else resolve(t, logins).hex())


def logins_needed(data: dict[str, Any]) -> list[str]:
    """The users whose passwords the finding's templates refer to."""
    users: list[str] = []

    def note(t: Any) -> Any:
        for part in t if isinstance(t, list) else []:
            if isinstance(part, dict) and str(part.get("password_of")) not in users:
                users.append(str(part.get("password_of")))
        return t

    _map_bytes(data, note)
    return users


def write(path: Path, data: dict[str, Any]) -> Path:
    """Write a finding's dict to ``path``: private, templated, redacted."""
    privatefiles.make_dir(path.parent)
    return privatefiles.write_text(path, json.dumps(to_file(data), indent=2) + "\n")


def load(path: Path, from_dict: Callable[[Any], T]) -> T:
    """A finding read from ``path`` by ``from_dict``; ValueError naming the file if it is
    unreadable or not a finding."""
    try:
        data = jsonfile.load(path)
    except jsonfile.JsonFileError as exc:
        raise ValueError(f"cannot read a finding: {exc}") from None
    try:
        return from_dict(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from None


def public_bytes(data: bytes) -> bytes:
    """``data``, or (when it holds a password) its template: what an id may be hashed from,
    so a finding's file name is no offline oracle for the password."""
    template = current().template(data)
    return data if isinstance(template, str) else json.dumps(template).encode()
