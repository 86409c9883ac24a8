"""The Debian releases the lab builds images of, and ``--distro`` parsing (no Docker SDK:
a command that only parses its options does not load it)."""

from __future__ import annotations

from pamconform.core.errors import UsageError

DISTROS = ("bookworm", "trixie")
DEFAULT_DISTRO = DISTROS[0]


def parse_distros(value: str | None) -> list[str]:
    """``--distro bookworm,trixie`` to a list (order kept, duplicates dropped)."""
    names = [d.strip() for d in (value or DEFAULT_DISTRO).split(",") if d.strip()]
    bad = [d for d in names if d not in DISTROS]
    if bad or not names:
        raise UsageError(f"--distro {value!r}: choose from {', '.join(DISTROS)} "
                         "(comma-separated)")
    return list(dict.fromkeys(names))
