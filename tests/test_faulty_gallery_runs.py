"""Every faulty server of the gallery starts, answers a login and stops on SIGTERM.

Whether the conformance suite catches each one is tested elsewhere.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from listening import wait_listening

from pamconform.lab import gallery

faulty = gallery.load()
rs = faulty.load_reference_server()

NAMES = sorted(faulty.GALLERY)
USER, PASSWORD = b"alice", b"alice-auth-pw"


@dataclass
class Running:
    proc: subprocess.Popen[bytes]
    socket: Path


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, Running]]:
    """All gallery servers, started at once (each in its own private directory)."""
    base = Path(tempfile.mkdtemp(prefix="pc-", dir="/tmp"))
    creds = base / "credentials"
    creds.write_text(f"alice:{rs.hash_password(PASSWORD, n=2**10)}\n")
    os.chmod(creds, 0o600)
    running: dict[str, Running] = {}
    try:
        for i, name in enumerate(NAMES):
            sock = base / f"d{i}" / "socket"
            sock.parent.mkdir(mode=0o700)
            proc = subprocess.Popen(
                [sys.executable, str(Path(faulty.__file__)), name, str(sock), str(creds),
                 "--allow-uid", str(os.getuid())],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            running[name] = Running(proc, sock)
        for name, r in running.items():
            wait_listening(r.socket, r.proc, name, timeout=15)
        yield running
    finally:
        for r in running.values():
            if r.proc.poll() is None:
                r.proc.kill()
            r.proc.communicate(timeout=5)
        shutil.rmtree(base, ignore_errors=True)


def test_gallery_specs_are_complete() -> None:
    for name, spec in faulty.GALLERY.items():
        assert spec.name == name
        assert spec.rule.startswith("R-S") and spec.defect and spec.catches
        assert all(c.startswith("redir.server.") for c in spec.catches)
        assert issubclass(spec.server, rs.RedirectorServer)


@pytest.mark.parametrize("name", NAMES)
def test_gallery_server_answers_and_stops(servers: dict[str, Running], name: str) -> None:
    r = servers[name]
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(str(r.socket))
        sock.sendall(USER + b"\n" + PASSWORD + b"\n")
        first = sock.recv(1)  # keeps-open never closes: read the reply byte only
        # inverted-polarity denies the right login; recv-per-field reads a request sent
        # in one write as a user name with a newline in it
        assert first == (b"1" if name in ("inverted-polarity", "recv-per-field") else b"0")
        r.proc.send_signal(signal.SIGTERM)  # with the connection still open
        # The stop itself takes well under the 2 s grace; the margin is for a loaded CI host.
        _, err = r.proc.communicate(timeout=30)
    assert r.proc.returncode == 0, err.decode(errors="replace")
    assert b"Traceback" not in err
    assert not r.socket.exists()
