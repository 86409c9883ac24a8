"""Reports: index.json (the contract), junit.xml and index.html, in one directory."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pamconform import __version__
from pamconform.report.html import render_html
from pamconform.report.junit import render_junit
from pamconform.runner import TargetResult


@dataclass
class Run:
    """One run of the harness: when it started and the targets it checked."""

    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    clock: float = field(default_factory=time.monotonic)
    targets: list[TargetResult] = field(default_factory=list)
    strict: bool = False
    #: The signal that stopped the run (``SIGINT``, ``SIGTERM``), if one did.
    interrupted: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "pamconform": __version__,
            "started": self.started.isoformat(timespec="seconds"),
            "duration_s": round(time.monotonic() - self.clock, 3),
            "strict": self.strict,
        }
        if self.interrupted:
            out["interrupted"] = self.interrupted
        out["targets"] = [t.as_dict() for t in self.targets]
        return out


def default_dir(base: Path, started: datetime) -> Path:
    """``reports/<timestamp>/``."""
    return base / started.strftime("%Y%m%d-%H%M%S")


def write(run: Run, directory: Path) -> Path:
    """Write index.json, junit.xml and index.html into directory; return it."""
    directory.mkdir(parents=True, exist_ok=True)
    data = run.as_dict()
    (directory / "index.json").write_text(json.dumps(data, indent=2) + "\n")
    (directory / "junit.xml").write_text(render_junit(data))
    (directory / "index.html").write_text(render_html(data))
    return directory


def point_latest(directory: Path) -> None:
    """Make ``<parent>/latest`` a symlink to directory."""
    latest = directory.parent / "latest"
    tmp = directory.parent / f".latest-{os.getpid()}"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(directory.name)
    os.replace(tmp, latest)
