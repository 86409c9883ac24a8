#!/usr/bin/env python3
"""Auth servers side by side, and the load generator against a plain C client loop.

    python3 benchmarks/bench_servers.py [--seconds 5] [--concurrency 1,16] [--json]

Servers, each started as a child on a fresh socket (``LocalServer``), each measured
with ``pamconform.protocols.redirector.loadgen`` (the engine of ``pamconform bench``), mix ``mixed``
(valid logins and wrong passwords alternating):

- ``reference``: the bundled reference server with its default scrypt cost
  (N=16384). Slow by design: every check, right or wrong, costs one scrypt.
- ``reference N=1024``: the same server with hashes made by ``adduser --scrypt-n
  1024``, so the figure is mostly the server's own protocol overhead.
- ``reference N=1024 half-close``: as above, with the client shutting down its write
  side after the request. The reference server waits up to 50 ms after the second
  newline for stray bytes (R-S2: bytes after the request must deny); a client that
  half-closes (the original module does not) lets it go on at once.
- ``seed-style``: ``benchmarks/seed_style_server.py``, a port of the design of
  pam_redirector's example server (threaded socketserver, 512-byte line reads,
  strip, lowercase user, plaintext compare) without its 45 s failure sleep.
- ``null``: ``benchmarks/null_server.py``, replies ``0`` at once, checks nothing.

Then the generator against ``benchmarks/c_client_loop.c`` (compiled here with ``cc``
into a temporary directory), both against the null server at the same concurrency:
the ratio says how much of the ceiling the generator itself costs.

Prints figures; not a test (nothing is asserted).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

# the checkout this script sits in, not another install
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pamconform.lab.localserver import LocalServer, reference_command, reference_server_script
from pamconform.protocols.redirector import loadgen

HERE = Path(__file__).resolve().parent
USERS = [("alice", "alice-auth-pw"), ("bob", "bob-auth-pw")]
PAIRS = [(u.encode(), p.encode()) for u, p in USERS]


def _reference_low_cost(tmp: Path) -> Callable[[Path, Path], list[str]]:
    """The reference server reading hashes made with ``adduser --scrypt-n 1024``."""
    creds = tmp / "credentials-n1024"
    for user, password in USERS:
        subprocess.run([sys.executable, str(reference_server_script()), "adduser",
                        "--scrypt-n", "1024", str(creds), user],
                       input=(password + "\n").encode(), check=True, capture_output=True,
                       timeout=60)
    base = reference_command()

    def command(sock: Path, _default_creds: Path) -> list[str]:
        return base(sock, creds)

    return command


def _script(name: str, *extra: str) -> Callable[[Path, Path], list[str]]:
    def command(sock: Path, _creds: Path) -> list[str]:
        return [sys.executable, str(HERE / name), str(sock), *extra]

    return command


def servers(tmp: Path) -> list[tuple[str, Callable[[Path, Path], list[str]], bool]]:
    """(label, command, client half-closes)."""
    seed_creds = [arg for u, p in USERS for arg in ("--credentials", f"{u}:{p}")]
    low = _reference_low_cost(tmp)
    return [
        ("reference (scrypt N=16384)", reference_command(), False),
        ("reference N=1024", low, False),
        ("reference N=1024 half-close", low, True),
        ("seed-style (no 45 s sleep)", _script("seed_style_server.py", *seed_creds), False),
        ("null (replies 0 at once)", _script("null_server.py"), False),
    ]


def measure(sock: Path, concurrency: int, seconds: float, *, half_close: bool = False,
            mix: str = "mixed") -> loadgen.BenchResult:
    return loadgen.run(sock, loadgen.plan(PAIRS, mix), concurrency=concurrency,
                       seconds=seconds, half_close=half_close, mix=mix, timeout=30)


def build_c_loop(tmp: Path) -> Path | None:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None
    out = tmp / "c_client_loop"
    subprocess.run([cc, "-O2", "-o", str(out), str(HERE / "c_client_loop.c")], check=True,
                   timeout=120)
    return out


def run_c_loop(binary: Path, sock: Path, seconds: float, concurrency: int) -> dict[str, float]:
    user, password = USERS[0]
    proc = subprocess.run([str(binary), str(sock), user, password, f"{seconds:g}",
                           str(concurrency)], capture_output=True, text=True, check=True,
                          timeout=seconds + 60)
    m = re.search(r"(\d+) round-trips in ([\d.]+) s: ([\d.]+)/s, mean latency ([\d.]+) ms, "
                  r"max ([\d.]+) ms, (\d+) errors", proc.stdout)
    if not m:
        raise RuntimeError(f"unexpected c_client_loop output: {proc.stdout!r}")
    return {"round_trips": int(m[1]), "per_second": float(m[3]), "mean_ms": float(m[4]),
            "max_ms": float(m[5]), "errors": int(m[6])}


HEADER = (f"{'server':<30} {'conc':>4} {'auth/s':>9} {'p50 ms':>8} {'p90 ms':>8} "
          f"{'p99 ms':>8} {'max ms':>8} {'n':>7} {'err':>4} {'wrong':>5}")


def row(label: str, r: loadgen.BenchResult) -> str:
    return (f"{label:<30} {r.concurrency:>4} {r.per_second:>9.1f} {r.pct(50):>8.2f} "
            f"{r.pct(90):>8.2f} {r.pct(99):>8.2f} "
            f"{(r.latencies_ms[-1] if r.latencies_ms else 0):>8.2f} {r.completed:>7} "
            f"{r.errors + r.timeouts:>4} {r.unexpected + r.malformed:>5}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement")
    parser.add_argument("--concurrency", default="1,16",
                        help="comma-separated levels (default 1,16)")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args(argv)
    levels = [int(x) for x in args.concurrency.split(",")]
    figures: dict[str, Any] = {"cpus": os.cpu_count(), "seconds": args.seconds,
                               "generator_workers": loadgen.default_workers(),
                               "servers": [], "generator_vs_c": []}
    tmp = Path(tempfile.mkdtemp(prefix="pc-bench-", dir="/tmp"))
    try:
        print(f"{os.cpu_count()} CPUs; {args.seconds:g} s per figure; generator "
              f"{loadgen.default_workers()} process(es); mix: valid and wrong alternating")
        print(HEADER)
        for label, command, half_close in servers(tmp):
            with LocalServer(command, USERS, name=label, start_timeout=30) as server:
                for level in levels:
                    r = measure(server.socket, level, args.seconds, half_close=half_close)
                    print(row(label, r), flush=True)
                    figures["servers"].append({"server": label, **r.summary()})
        print("\n(null: 'wrong' counts the grants it gives to wrong passwords, by design)")
        binary = build_c_loop(tmp)
        if binary is None:
            print("\nno C compiler (cc): generator vs C loop skipped")
        else:
            print("\ngenerator vs plain C client loop, against the null server (mix grant):")
            print(f"{'conc':>4} {'generator/s':>12} {'C loop/s':>10} {'ratio':>6} "
                  f"{'gen mean ms':>11} {'C mean ms':>9}")
            with LocalServer(_script("null_server.py"), USERS, name="null") as server:
                for level in levels:
                    r = measure(server.socket, level, args.seconds, mix="grant")
                    c = run_c_loop(binary, server.socket, args.seconds, level)
                    ratio = r.per_second / c["per_second"] if c["per_second"] else 0.0
                    mean = sum(r.latencies_ms) / len(r.latencies_ms) if r.latencies_ms else 0
                    print(f"{level:>4} {r.per_second:>12.1f} {c['per_second']:>10.1f} "
                          f"{ratio:>6.2f} {mean:>11.3f} {c['mean_ms']:>9.3f}", flush=True)
                    figures["generator_vs_c"].append(
                        {"concurrency": level, "generator_per_s": round(r.per_second, 1),
                         "c_loop_per_s": c["per_second"], "ratio": round(ratio, 3)})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
