"""``pamconform fuzz server`` while it runs: a progress line every few seconds of fuzzing
(items, attempts, attempts/s, findings so far), through the same path as its finding
lines, and none with ``--quiet``."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pamconform.cli.main import REFERENCE_CREDENTIALS
from pamconform.fuzz import engine
from pamconform.lab.localserver import LocalServer, reference_command

LOGIN = "alice:alice-auth-pw"
PROGRESS = re.compile(r"^  (\d+\.\d) s: ([\d,]+) items, ([\d,]+) attempts \([\d,]+/s\), "
                      r"(\d+) findings?$", re.M)


@pytest.fixture(scope="module")
def reference() -> Iterator[LocalServer]:
    """The reference server, dropping silent clients after 1 s (the fuzzer's stalls end
    sooner, and with them each run)."""
    with LocalServer(reference_command(["--idle-timeout", "1"]), REFERENCE_CREDENTIALS,
                     name="reference") as server:
        yield server


def test_fuzz_prints_progress_every_few_seconds(reference: LocalServer, tmp_path: Path) -> None:
    """The command as typed, with the real interval (5 s): a 7 s run shows one line."""
    proc = subprocess.run([sys.executable, "-m", "pamconform.cli", "fuzz", "server",
                           str(reference.socket), "--credentials", LOGIN, "--seconds", "7",
                           "--report", str(tmp_path / "report")],
                          capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = PROGRESS.findall(proc.stdout)
    assert lines, proc.stdout
    seconds, items, attempts, findings = lines[0]
    assert 5.0 <= float(seconds) < 7.0
    assert int(items.replace(",", "")) > 0 and int(attempts.replace(",", "")) > 0
    assert findings == "0"
    # between the header and the summary
    out = proc.stdout
    assert out.index("fuzzing redirector server") < out.index(" s: ") < out.index(" items, ")


def test_progress_follows_the_finding_lines_path(
        reference: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        in_process_cli: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    monkeypatch.setattr(engine, "PROGRESS_SECONDS", 0.4)
    args = ("fuzz", "server", str(reference.socket), "--credentials", LOGIN,
            "--seconds", "1.5", "--max-examples", "1000000")
    shown = in_process_cli(*args, "--report", str(tmp_path / "shown"))
    assert shown.returncode == 0, shown.stdout + shown.stderr
    lines = PROGRESS.findall(shown.stdout)
    assert len(lines) >= 2, shown.stdout
    clocks = [float(line[0]) for line in lines]
    assert clocks == sorted(clocks) and all(c >= 0.4 for c in clocks)

    quiet = in_process_cli(*args, "--quiet", "--report", str(tmp_path / "quiet"))
    assert quiet.returncode == 0, quiet.stdout + quiet.stderr
    assert not PROGRESS.search(quiet.stdout + quiet.stderr), quiet.stdout
    assert " items, " in quiet.stdout  # the closing summary line stays


def test_engine_progress_counts_findings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The toy model of the engine tests: findings so far are counted in the line."""
    from tests.test_fuzz_engine import TOY

    clock = iter(range(1000))
    monkeypatch.setattr(engine, "PROGRESS_SECONDS", 3.0)
    events: list[str] = []
    cfg = engine.FuzzConfig("toy", "", seed=1, seconds=1000, max_examples=40)
    fuzzer = engine.Fuzzer(cfg, on_event=events.append, model=TOY)
    monkeypatch.setattr(fuzzer, "_clock", lambda: float(next(clock)))
    result = fuzzer.run()
    progress = [e for e in events if re.match(r"\d+\.\d s: ", e)]
    clocks = [float(e.split(" s:")[0]) for e in progress]
    assert clocks and clocks[0] >= 3.0
    periods = [int(c // 3.0) for c in clocks]  # at most one line per period of 3 s
    assert periods == sorted(set(periods))
    assert any(e.startswith("finding: ") for e in events)
    last = re.match(r"[\d.]+ s: [\d,]+ items, [\d,]+ attempts \([\d,]+/s\), (\d+) findings?$",
                    progress[-1])
    assert last and 1 <= int(last[1]) <= len(result.findings)
