"""``pamconform bench`` while it runs: progress lines, and Ctrl-C / SIGTERM keep the figures
of the round trips that finished (exit 130 / 143) and leave no generator process."""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from child_processes import children

from pamconform.cli import bench
from pamconform.cli.main import REFERENCE_CREDENTIALS
from pamconform.core import interrupts
from pamconform.lab.localserver import LocalServer, reference_command
from pamconform.protocols.redirector import loadgen

LOGIN = "alice:alice-auth-pw"
PAIRS = [(b"alice", b"alice-auth-pw")]
#: A progress line (on stdout, or on stderr with --json).
PROGRESS = re.compile(r"^  \d+\.\d s: [\d,]+ round trips \([\d,]+/s\), \d+ unexpected",
                      re.M)


@pytest.fixture(scope="module")
def reference() -> Iterator[LocalServer]:
    with LocalServer(reference_command(), REFERENCE_CREDENTIALS, name="reference") as server:
        yield server


def _running(pid: int) -> bool:
    """Whether ``pid`` is a live process (not a zombie, not gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


# --------------------------------------------------------------------- progress lines


def test_bench_prints_progress_while_it_runs(reference: LocalServer) -> None:
    """The command as typed, with the real interval: a 3 s run shows a line at 2 s."""
    proc = subprocess.run([sys.executable, "-m", "pamconform.cli", "bench",
                           str(reference.socket), "--credentials", LOGIN, "--seconds", "3"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = PROGRESS.findall(proc.stdout)
    assert len(lines) >= 1, proc.stdout
    header, first = proc.stdout.splitlines()[:2]
    assert header.startswith("pamconform bench: ") and PROGRESS.match(first), proc.stdout
    assert re.search(r"^completed \d+ auth round-trips", proc.stdout, re.M)


def test_quiet_and_json_keep_progress_off_stdout(
        reference: LocalServer, monkeypatch: pytest.MonkeyPatch,
        in_process_cli: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    monkeypatch.setattr(bench, "PROGRESS_SECONDS", 0.3)
    args = ("bench", str(reference.socket), "--credentials", LOGIN, "--seconds", "1.2")
    shown = in_process_cli(*args)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert len(PROGRESS.findall(shown.stdout)) >= 2 and not shown.stderr

    quiet = in_process_cli(*args, "--quiet")
    assert quiet.returncode == 0, quiet.stdout + quiet.stderr
    assert not PROGRESS.search(quiet.stdout + quiet.stderr)
    assert "completed " in quiet.stdout

    as_json = in_process_cli(*args, "--json")
    assert as_json.returncode == 0, as_json.stdout + as_json.stderr
    data = json.loads(as_json.stdout)  # one clean document: progress went to stderr
    assert data["completed"] > 0 and data["interrupted"] is None
    assert len(PROGRESS.findall(as_json.stderr)) >= 2

    quiet_json = in_process_cli(*args, "--json", "--quiet")
    assert json.loads(quiet_json.stdout)["completed"] > 0 and not quiet_json.stderr


@pytest.mark.parametrize("workers", [1, 2])
def test_generator_reports_progress(reference: LocalServer, workers: int) -> None:
    seen: list[loadgen.Progress] = []
    result = loadgen.run(reference.socket, loadgen.plan(PAIRS, "mixed"), concurrency=2,
                         seconds=1.0, workers=workers, on_progress=seen.append,
                         progress_every=0.25)
    assert result.workers == workers and result.interrupted is None
    assert len(seen) >= 2, seen
    assert all(b.elapsed_s > a.elapsed_s and b.completed >= a.completed
               for a, b in itertools.pairwise(seen))
    assert seen[-1].completed <= result.completed and seen[-1].unexpected == 0
    assert PROGRESS.match(f"  {seen[-1].line()}")


# --------------------------------------------------------------------- Ctrl-C, SIGTERM


@pytest.mark.parametrize("workers", [1, 2])
def test_generator_stopped_by_a_signal_keeps_what_finished(
        reference: LocalServer, workers: int) -> None:
    """In the library: Interrupted, whose ``partial`` holds the figures so far."""
    import multiprocessing

    timer = threading.Timer(0.8, os.kill, (os.getpid(), signal.SIGINT))
    started = time.monotonic()
    try:
        with pytest.raises(interrupts.Interrupted) as info, interrupts.guard():
            timer.start()
            loadgen.run(reference.socket, loadgen.plan(PAIRS, "mixed"), concurrency=2,
                        seconds=30, workers=workers)
    finally:
        timer.cancel()
    assert time.monotonic() - started < 10
    result = info.value.partial
    assert isinstance(result, loadgen.BenchResult)
    assert result.interrupted == "SIGINT" and result.workers == workers
    assert result.completed > 0 and result.unreported_workers == 0
    assert result.completed == result.granted + result.denied + result.malformed
    assert 0.5 < result.elapsed_s < 5
    assert result.summary()["interrupted"] == "SIGINT"
    assert multiprocessing.active_children() == []


def _interrupted_bench(server: LocalServer, signum: int, *extra: str,
                       after_progress: bool = False) -> tuple[int, str, str, dict[int, str]]:
    """Start ``bench`` with ``extra`` and signal it about 1.5 s after its generator started
    (``after_progress``: once a progress line came on stderr); its exit code, output and
    the generator processes seen."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "pamconform.cli", "bench", str(server.socket),
         "--credentials", LOGIN, "--seconds", "60", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"))
    streams: dict[str, list[str]] = {"out": [], "err": []}
    readers = [threading.Thread(target=lambda lines, f: lines.extend(f), args=(lines, f),
                                daemon=True)
               for lines, f in ((streams["out"], proc.stdout), (streams["err"], proc.stderr))]
    for reader in readers:
        reader.start()
    workers: dict[int, str] = {}
    try:
        count = int(extra[extra.index("--workers") + 1]) if "--workers" in extra else 1
        wanted = count if count > 1 else 0  # one worker runs in the bench process
        deadline = time.monotonic() + 30
        while len(workers) < wanted and time.monotonic() < deadline:
            workers = {pid: cmd for pid, cmd in children(proc.pid).items() if "bench" in cmd}
            time.sleep(0.05)
        assert len(workers) >= wanted, "the generator's worker processes never started"
        if after_progress:
            while not PROGRESS.search("".join(streams["err"])):
                assert time.monotonic() < deadline and proc.poll() is None, streams
                time.sleep(0.05)
        else:
            time.sleep(1.5)
        signalled = time.monotonic()
        proc.send_signal(signum)
        proc.wait(30)
        assert time.monotonic() - signalled < 10
    finally:
        proc.kill()
        proc.wait(10)
    for reader in readers:
        reader.join(10)
    return proc.returncode, "".join(streams["out"]), "".join(streams["err"]), workers


def _no_worker_left(workers: dict[int, str]) -> None:
    left = [pid for pid in workers if _running(pid)
            and "bench" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")]
    assert left == [], f"generator processes left behind: {left}"


def test_ctrl_c_prints_the_figures_so_far_and_exits_130(reference: LocalServer) -> None:
    rc, out, err, workers = _interrupted_bench(reference, signal.SIGINT, "--workers", "2")
    assert rc == 130, out + err
    assert "Traceback" not in err and "interrupted (SIGINT)" not in err
    m = re.search(r"^stopped by SIGINT after ([\d.]+) s: the figures are of the ([\d,]+) "
                  r"round trips that finished$", out, re.M)
    assert m, out
    finished = int(m[2].replace(",", ""))
    assert 1.0 < float(m[1]) < 10 and finished > 0
    done = re.search(r"^completed (\d+) auth round-trips in [\d.]+ s", out, re.M)
    assert done and int(done[1]) == finished, out
    assert re.search(r"^latency ms: p50 ", out, re.M)
    assert "generator: 2 worker process(es)" in out
    _no_worker_left(workers)


@pytest.mark.parametrize(("signum", "extra"), [
    (signal.SIGTERM, ("--workers", "2")),
    (signal.SIGINT, ("--workers", "1")),
], ids=["sigterm-workers", "sigint-in-process"])
def test_a_stopped_json_run_is_one_document_marked_interrupted(
        reference: LocalServer, signum: int, extra: tuple[str, ...]) -> None:
    rc, out, err, workers = _interrupted_bench(reference, signum, "--json", *extra,
                                               after_progress=True)
    name = signal.Signals(signum).name
    assert rc == 128 + signum, out + err
    data = json.loads(out)
    assert data["interrupted"] == name
    assert data["completed"] > 0 and data["completed"] == data["granted"] + data["denied"]
    assert data["unreported_workers"] == 0 and data["workers"] == int(extra[1])
    assert f"pamconform bench: stopped by {name} after" in err
    assert PROGRESS.search(err), err  # the line at 2 s went to stderr
    _no_worker_left(workers)
