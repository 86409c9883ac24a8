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
    (snippet,) = set(re.findall(r"python -c '([^']+)'", WORKFLOW.read_text()))
    out = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True,
                         timeout=60, check=True).stdout.strip()
    assert (Path(out) / "ensure-engine.sh").is_file()


def test_the_shard_matrix_covers_every_part_and_the_merge_joins_them() -> None:
    jobs = _jobs()
    shards = jobs["sharded"]["strategy"]["matrix"]["shard"]
    count = len(shards)
    assert shards == list(range(1, count + 1)) and count >= 2
    assert jobs["sharded"]["strategy"]["fail-fast"] is False
    (run,) = [r for _s, r in _runs(jobs["sharded"]) if "pamconform run" in r]
    part = re.search(r"--shard \"\$\{\{ matrix\.shard \}\}/(\d+)\"", run)
    assert part is not None and int(part.group(1)) == count, run
    report = re.search(r"--report \"([^\"]+)\"", run)
    assert report is not None
    upload = [s for s in jobs["sharded"]["steps"] if "upload-artifact" in s.get("uses", "")]
    assert upload and upload[0]["with"]["path"] == report.group(1)
    assert upload[0].get("if") == "always()"
    prefix = upload[0]["with"]["name"].split("$")[0]
    merge = jobs["merge"]
    assert merge["needs"] == "sharded" and merge["if"] == "always()"
    download = [s for s in merge["steps"] if "download-artifact" in s.get("uses", "")]
    assert download[0]["with"]["pattern"] == prefix + "*"
    (merged,) = [r for _s, r in _runs(merge) if "pamconform merge" in r]
    assert f"{download[0]['with']['path']}/{prefix}*" in merged and "--report" in merged
