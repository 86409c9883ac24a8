"""``pamconform bench`` runs and prints its figures (the format, not the speed)."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pamconform.cli.main import REFERENCE_CREDENTIALS
from pamconform.lab.localserver import LocalServer, reference_command
from pamconform.protocols.redirector import loadgen


@pytest.fixture(scope="module")
def reference() -> Iterator[LocalServer]:
    with LocalServer(reference_command(), REFERENCE_CREDENTIALS, name="reference") as server:
        yield server


def _bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pamconform.cli", "bench", *args],
                          capture_output=True, text=True, timeout=120, check=False)


def test_bench_prints_rate_and_percentiles(reference: LocalServer) -> None:
    proc = _bench(str(reference.socket), "--protocol", "redirector", "--credentials",
                  "alice:alice-auth-pw", "--concurrency", "2", "--seconds", "1")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert re.search(r"^completed (\d+) auth round-trips in [\d.]+ s: [\d.]+ auth/s$", out, re.M)
    m = re.search(r"^replies: (\d+) granted, (\d+) denied, 0 unexpected, 0 malformed; "
                  r"0 errors, 0 timeouts$", out, re.M)
    assert m, out
    assert int(m[1]) >= 1 and int(m[2]) >= 1  # mixed: valid and wrong passwords alternate
    assert re.search(r"^latency ms: p50 [\d.]+  p90 [\d.]+  p99 [\d.]+  max [\d.]+  "
                     r"\(mean [\d.]+\)$", out, re.M), out


def test_bench_json_and_count_bound(reference: LocalServer) -> None:
    proc = _bench(str(reference.socket), "--credentials", "alice:alice-auth-pw",
                  "--credentials", "bob:bob-auth-pw", "--mix", "deny", "--count", "3",
                  "--seconds", "30", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["completed"] == 3 and data["denied"] == 3 and data["unexpected"] == 0
    assert set(data["latency_ms"]) == {"p50", "p90", "p99", "max", "mean"}
    assert data["latency_ms"]["p50"] <= data["latency_ms"]["max"]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["/tmp/pc-no-such-socket", "--credentials", "a:bbbb"], "no such socket"),
        (["/tmp/x", "--seconds", "1"], "at least one valid login"),
        (["/tmp/x", "--credentials", "a:bbbb", "--concurrency", "0"], "at least 1"),
        (["/tmp/x", "--credentials", "a:bbbb", "--mix", "odd"], "invalid choice"),
    ],
)
def test_bench_bad_input_is_one_line_exit_2(args: list[str], needle: str) -> None:
    proc = _bench(*args)
    assert proc.returncode == 2
    assert needle in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_percentile_and_plan() -> None:
    values = [float(x) for x in range(1, 101)]
    assert loadgen.percentile(values, 50) == 50.0
    assert loadgen.percentile(values, 99) == 99.0
    assert loadgen.percentile(values, 100) == 100.0
    assert loadgen.percentile([], 50) == 0.0
    reqs = loadgen.plan([(b"u", b"p")], "mixed")
    assert [r.payload for r in reqs] == [b"u\np\n", b"u\np" + loadgen.WRONG_SUFFIX + b"\n"]


def test_generator_counts_wrong_answers(short_dir: Path) -> None:
    """Against a server that grants everything, denials that were due count as unexpected."""
    import socket
    import threading

    path = short_dir / "s"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(64)

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conn.recv(4096)
            conn.send(b"0")
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    try:
        for workers in (1, 2):  # in process, and forked worker processes
            result = loadgen.run(path, loadgen.plan([(b"u", b"p")], "mixed"), concurrency=2,
                                 count=10, seconds=10, workers=workers)
            assert result.workers == workers
            assert result.completed == 10 and result.granted == 10
            assert result.unexpected == 5
    finally:
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)
        listener.close()
