"""Who may connect to a UNIX socket by its permissions: connect needs write permission on
the socket and search permission on every directory above it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

#: The permission classes a socket's mode grants others: (write on it, search above).
CLASSES = {"group": (stat.S_IWGRP, stat.S_IXGRP), "others": (stat.S_IWOTH, stat.S_IXOTH)}


def barrier(path: Path | str, who: str) -> str | None:
    """Why ``who`` (``group`` or ``others``) cannot connect to the socket at ``path`` (no
    write bit for them, or a directory above it they cannot search), or None: they can."""
    write, search = CLASSES[who]
    mode = os.stat(path).st_mode
    if not mode & write:
        return f"socket mode {stat.S_IMODE(mode):04o} gives {who} no write"
    for parent in Path(path).resolve().parents:
        parent_mode = os.stat(parent).st_mode
        if not parent_mode & search:
            return f"directory {parent} ({stat.S_IMODE(parent_mode):04o}) bars {who}"
    return None
