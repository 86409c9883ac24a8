"""A ``module --no-lab`` build step is stopped with its whole process group.

The build command is the user's shell line; its children (make's jobs, a ``sleep``) must
not outlive a timeout, a Ctrl-C or a SIGTERM of pamconform.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from pamconform.drivers.host_module import _sh


def _left(marker: str) -> list[str]:
    out = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True,
                         timeout=10, check=False).stdout
    return out.split()


def _gone(marker: str, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while _left(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not _left(marker)


def test_a_timed_out_build_leaves_no_child(tmp_path: Path) -> None:
    marker = f"{os.getpid()}.7311"
    ok, log = _sh(f"sleep {marker}; true", tmp_path, timeout=0.5)
    assert not ok and log.startswith("timed out after")
    assert _gone(marker)


def test_an_interrupted_build_leaves_no_child(tmp_path: Path) -> None:
    marker = f"{os.getpid()}.7312"

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 0.5)
    try:
        with pytest.raises(KeyboardInterrupt):
            _sh(f"sleep {marker}; true", tmp_path, timeout=60)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert _gone(marker)
