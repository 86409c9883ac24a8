"""Waiting for a test's server child to listen: the socket file appears at ``bind()``, a
moment before ``listen()``, and a client that connects in between is refused (a test
would then see a daemon that is "gone")."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from pamconform.protocols.token.procfs import listening_inodes


def wait_listening(path: Path, proc: subprocess.Popen[bytes], what: str,
                   timeout: float = 10) -> None:
    """Return once a socket listens at ``path``; fail the test (with the child's error
    output) if ``proc`` exits or ``timeout`` passes first."""
    deadline = time.monotonic() + timeout
    while not listening_inodes(path):
        if proc.poll() is not None:
            err = proc.stderr.read() if proc.stderr is not None else b""
            raise AssertionError(f"{what} exited at start: {err!r}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not listen within {timeout:.0f} s")
        time.sleep(0.02)
