"""Reports: index.json (the contract), junit.xml and index.html, in one directory.

Private (directories 0700, files 0600) and redacted: every password and token the run
knows is replaced by its marker before anything is rendered (:mod:`pamconform.core.redaction`).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pamconform import __version__
from pamconform.core import privatefiles
from pamconform.core.redaction import redact_tree
from pamconform.core.runner import TargetResult
from pamconform.report.html import render_html
from pamconform.report.junit import render_junit
from pamconform.report.timing import target_timing


@dataclass
class Run:
    """One run of the harness: when it started and the targets it checked."""

    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    clock: float = field(default_factory=time.monotonic)
    targets: list[TargetResult] = field(default_factory=list)
    strict: bool = False
    #: The signal that stopped the run (``SIGINT``, ``SIGTERM``), if one did.
    interrupted: str | None = None
    #: ``--shard K/N``: which part of which plan this run checked (for ``pamconform merge``)
    shard: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "pamconform": __version__,
            "started": self.started.isoformat(timespec="seconds"),
            "duration_s": round(time.monotonic() - self.clock, 3),
            "strict": self.strict,
        }
        if self.interrupted:
            out["interrupted"] = self.interrupted
        if self.shard is not None:
            out["shard"] = self.shard
        out["targets"] = [_with_timing(t) for t in self.targets]
        return out


def _with_timing(target: TargetResult) -> dict[str, Any]:
    """The target's dict with its ``timing`` (measured by the command, else from its cases)."""
    out = target.as_dict()
    if "timing" not in out:
        out["timing"] = target_timing(target)
    return out


#: A case's own description (``Case.as_dict``): text of the suite's source, never a
#: secret; with its verdict, a word pamconform chose.
CASE_DEFINITION = ("id", "rule", "severity", "title", "requirement", "suite", "verdict")
#: The run's and each target's values pamconform made itself (its version, the clock,
#: the names of its kinds and protocols).
RUN_FIELDS = ("pamconform", "started", "duration_s", "strict", "interrupted")
TARGET_FIELDS = ("kind", "protocol")


def _keep_case_definitions(clear: dict[str, Any], data: dict[str, Any]) -> None:
    """Put back the values redaction may have cut that are no data: a password fragment
    can match a case id (``lucy-ldap-pw`` marks ``ldap-p`` in ``nslcd.server.ldap-paused``),
    a password can be ``PASS`` or today's date (a marker there would break every reader
    and tell the password)."""
    data.update({key: clear[key] for key in RUN_FIELDS if key in clear})
    for target, shown in zip(clear["targets"], data["targets"], strict=True):
        shown.update({key: target[key] for key in TARGET_FIELDS if key in target})
        for case, out in zip(target["cases"], shown["cases"], strict=True):
            out.update({key: case[key] for key in CASE_DEFINITION if key in case})
    shard, shown_shard = clear.get("shard"), data.get("shard")
    if isinstance(shard, dict) and isinstance(shown_shard, dict):
        # target names stay redacted, case ids do not (merge matches them to the cases)
        plan, shown_plan = shard.get("plan"), shown_shard.get("plan")
        if isinstance(plan, dict) and isinstance(shown_plan, dict):
            shown_shard["plan"] = {name: list(ids) for name, ids
                                   in zip(shown_plan, plan.values(), strict=True)}
        known, shown_known = shard.get("known_failing"), shown_shard.get("known_failing")
        if isinstance(known, list) and isinstance(shown_known, list):
            shown_shard["known_failing"] = [[pair[0], clear_pair[1]] for pair, clear_pair
                                            in zip(shown_known, known, strict=True)]


def redacted(run: Run) -> dict[str, Any]:
    """The run as its report shows it: redacted, the suite's own case descriptions kept."""
    clear = run.as_dict()
    data = redact_tree(clear)
    _keep_case_definitions(clear, data)
    return data


def default_dir(base: Path, started: datetime) -> Path:
    """A new private ``reports/<timestamp>/`` (``<timestamp>-2``... when taken), created."""
    return privatefiles.new_dir(base, started)


def write(run: Run, directory: Path) -> Path:
    """Write index.json, junit.xml and index.html into directory, redacted; return it."""
    return write_data(redacted(run), directory)


def write_data(data: dict[str, Any], directory: Path) -> Path:
    """Write a report already redacted (e.g. one merged from shards) into directory."""
    files = {"index.json": json.dumps(data, indent=2) + "\n", "junit.xml": render_junit(data),
             "index.html": render_html(data)}  # all rendered first: never half a report
    privatefiles.make_dir(directory)
    for name, text in files.items():
        privatefiles.write_text(directory / name, text)
    return directory


def point_latest(directory: Path) -> None:
    """Make ``<parent>/latest`` a symlink to directory."""
    latest = directory.parent / "latest"
    tmp = directory.parent / f".latest-{os.getpid()}"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(directory.name)
    os.replace(tmp, latest)
