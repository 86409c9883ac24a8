"""pytest-xdist spreads the plugin's lab-backed items over workers: each worker builds the
module in its own lab container (its own run id and owner label); the image build is
shared under a file lock; nothing is left behind."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("xdist")
pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parents[1]


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def test_module_items_run_on_two_workers(docker_client, tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PAMCONFORM_CREDENTIALS"}
    env["PYTHONPATH"] = str(ROOT)
    out = tmp_path / "out"
    seen: dict[str, tuple[str, str]] = {}  # container name -> (run id, owner)
    with out.open("w") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "2", "-v",
             "suites/redirector_module_e2e",
             f"--module={ROOT / 'modules' / 'pam_redirector'}", "-k", "su-grant or ssh-grant"],
            cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 600
        while proc.poll() is None and time.monotonic() < deadline:
            for c in docker_client.containers.list(  # type: ignore[attr-defined]
                    filters={"label": "pamconform=1"}):
                owner = c.labels.get("pamconform.owner", "")
                pid = owner.rpartition(":")[2]
                if pid.isdigit() and _parent(int(pid)) == proc.pid:  # an xdist worker's
                    seen[c.name] = (c.labels.get("pamconform.run", ""), owner)
            time.sleep(0.3)
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
    text = out.read_text()
    assert proc.returncode == 0, text[-3000:]
    passed = dict(re.findall(r"\[(gw\d)\] \[\s*\d+%\] PASSED \S+::(redir\.e2e\.[\w-]+)", text))
    assert set(passed) == {"gw0", "gw1"}, text[-3000:]  # one item on each worker
    # each worker ran its own lab: its own run id, its own owner
    assert len({run for run, _owner in seen.values()}) == 2, seen
    assert len({owner for _run, owner in seen.values()}) == 2, seen
    left = {c.name for c in docker_client.containers.list(all=True)}  # type: ignore[attr-defined]
    assert not left & set(seen)  # and removed it
