"""Talk to a socket as another uid, in a child process (needs a root harness)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

_CHILD = r"""
import json, socket, sys
path, data, timeout = sys.argv[1], bytes.fromhex(sys.argv[2]), float(sys.argv[3])
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(timeout)
try:
    s.connect(path)
except OSError as exc:
    print(json.dumps({"refused": str(exc)})); sys.exit(0)
reply = b""
try:
    s.sendall(data)
    while len(reply) < 4096:
        chunk = s.recv(4096)
        if not chunk:
            break
        reply += chunk
except OSError as exc:
    print(json.dumps({"reply": reply.hex(), "error": str(exc)})); sys.exit(0)
print(json.dumps({"reply": reply.hex()}))
"""


@dataclass
class PeerOutcome:
    """What an unprivileged client saw."""

    refused: str | None
    reply: bytes
    error: str | None

    def describe(self) -> str:
        if self.refused:
            return f"connect refused ({self.refused})"
        tail = f", then {self.error}" if self.error else ""
        return f"reply {self.reply!r}{tail}"


def connect_as(uid: int, gid: int, path: Path | str, data: bytes, timeout: float) -> PeerOutcome:
    """Connect as uid/gid, send data, read the reply until close."""
    proc = subprocess.run(
        [sys.executable, "-I", "-c", _CHILD, str(path), data.hex(), str(timeout)],
        user=uid,
        group=gid,
        extra_groups=[],
        capture_output=True,
        timeout=timeout + 5,
        check=False,
        cwd="/",
    )
    try:
        out = json.loads(proc.stdout.decode() or "{}")
    except json.JSONDecodeError as exc:
        raise RuntimeError(f"peer child failed: {proc.stderr.decode()[-300:]}") from exc
    if not out:
        raise RuntimeError(f"peer child failed: {proc.stderr.decode()[-300:]}")
    return PeerOutcome(out.get("refused"), bytes.fromhex(out.get("reply", "")), out.get("error"))
