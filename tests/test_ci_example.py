"""The example CI workflow passes logins through a secret in the environment, never argv."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml")

WORKFLOW = Path(__file__).resolve().parents[1] / "examples" / "ci" / "github-workflow.yml"
#: A command that takes a login (``pamconform server/bench/fuzz server``).
NEEDS_LOGIN = re.compile(r"\bpamconform\s+(server|bench|fuzz\s+server)\b")


def _jobs() -> dict[str, Any]:
    jobs: dict[str, Any] = yaml.safe_load(WORKFLOW.read_text())["jobs"]
    return jobs


def _runs(job: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    return [(step, step["run"]) for step in job["steps"] if "run" in step]


def test_no_login_on_a_command_line() -> None:
    for name, job in _jobs().items():
        for _step, run in _runs(job):
            assert "--credentials " not in run and "--credentials=" not in run, (name, run)


def test_commands_that_need_a_login_get_the_secret_in_their_environment() -> None:
    users = 0
    for name, job in _jobs().items():
        for step, run in _runs(job):
            if not NEEDS_LOGIN.search(run):
                continue
            users += 1
            env = {**job.get("env", {}), **step.get("env", {})}
            file_given = "--credentials-file" in run
            assert file_given or env.get("PAMCONFORM_CREDENTIALS") == (
                "${{ secrets.PAMCONFORM_CREDENTIALS }}"), (name, step.get("name"))
    assert users >= 2  # the server check and the bench


def test_the_engine_step_finds_the_shipped_containers() -> None:
    (snippet,) = re.findall(r"python -c '([^']+)'", WORKFLOW.read_text())
    out = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True,
                         timeout=60, check=True).stdout.strip()
    assert (Path(out) / "ensure-engine.sh").is_file()
