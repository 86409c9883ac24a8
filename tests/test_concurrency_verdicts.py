"""No verdict changes because cases run at once: the server suites with ``--jobs 1`` and
with the default pool, compared by ``pamconform diff`` and case by case."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from pamconform.core.runner import default_jobs

ROOT = Path(__file__).resolve().parent.parent
#: The bundled reference servers' suites (no Docker): every case but the lab targets'.
SELECTION = ["--cases", "redir.server.*", "--cases", "token.server.*"]


def _pamconform(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "pamconform.cli", *args], cwd=ROOT, env=env,
                          text=True, capture_output=True, timeout=timeout, check=False)


def _verdicts(report: Path) -> dict[tuple[str, str], str]:
    data: dict[str, Any] = json.loads((report / "index.json").read_text())
    return {(t["name"], c["id"]): c["verdict"] for t in data["targets"] for c in t["cases"]
            if c["verdict"] != "SKIPPED" or t["name"].startswith("reference")}


def test_server_suites_same_verdicts_with_one_job_and_with_the_pool(tmp_path: Path) -> None:
    assert default_jobs() > 1, "the default pool runs cases at once"
    one, pool = tmp_path / "jobs-1", tmp_path / "jobs-default"
    first = _pamconform("run", "--no-lab", *SELECTION, "--jobs", "1", "--quiet",
                        "--report", str(one))
    second = _pamconform("run", "--no-lab", *SELECTION, "--quiet", "--report", str(pool))
    assert first.returncode == second.returncode == 0, first.stdout + second.stdout
    a, b = _verdicts(one), _verdicts(pool)
    assert len(a) >= 50 and list(a) == list(b)  # same cases, same order
    changed = {k: (a[k], b[k]) for k in a if a[k] != b[k]}
    assert not changed
    diff = _pamconform("diff", str(one), str(pool), "--time-threshold", "1000")
    assert diff.returncode == 0, diff.stdout + diff.stderr
    assert "no changes (" in diff.stdout, diff.stdout
