#!/usr/bin/env python3
"""Fuzzer executions per second, against the reference server and a null server.

An execution is one connection: connect, write the request (in its chunks), read the
reply until EOF. Printed for the fuzzer (generation, oracle and all), for a plain
Python loop sending one valid request the same way, and for the same loop in C
(compiled at run time with ``cc``, skipped if there is none), so the fuzzer's
overhead reads as a ratio. Target: at least 2,000 fuzzer executions per second
against the null server (which replies ``0`` at once and closes)::

    python3 benchmarks/bench_fuzz.py [--seconds 5] [--seed 1] [--json FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pamconform.fuzz.engine import Fuzzer  # noqa: E402
from pamconform.lab.localserver import LocalServer, reference_command  # noqa: E402
from pamconform.protocols.redirector.client import request  # noqa: E402
from pamconform.protocols.redirector.fuzz_model import config  # noqa: E402

TARGET_PER_S = 2000.0
CREDENTIALS = [("alice", "alice-auth-pw"), ("bob", "bob-auth-pw")]
PAIRS = [(u.encode(), p.encode()) for u, p in CREDENTIALS]

C_LOOP = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    const char *path = argv[1], *req = argv[3];
    double seconds = atof(argv[2]);
    struct sockaddr_un sa = {0};
    struct timeval tv = {3, 0};
    char buf[4096];
    long n = 0, errors = 0;
    sa.sun_family = AF_UNIX;
    strncpy(sa.sun_path, path, sizeof sa.sun_path - 1);
    double end = now() + seconds, start = now();
    while (now() < end) {
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) { errors++; close(fd); continue; }
        send(fd, req, strlen(req), MSG_NOSIGNAL);
        shutdown(fd, SHUT_WR);
        while (read(fd, buf, sizeof buf) > 0) {}
        close(fd);
        n++;
    }
    printf("%ld %f %ld\n", n, now() - start, errors);
    return 0;
}
"""


def null_server(path: str) -> None:
    """Reply 0 at once to every connection and close it (runs in its own process)."""
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(path)
        listener.listen(512)
        while True:
            conn, _ = listener.accept()
            with contextlib.suppress(OSError):
                conn.send(b"0")
            conn.close()


@contextlib.contextmanager
def null_server_process() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="pc-null-", dir="/tmp"))
    path = directory / "socket"
    proc = subprocess.Popen([sys.executable, __file__, "--null-server", str(path)],
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while not path.exists():
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("the null server did not start")
            time.sleep(0.02)
        yield path
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        shutil.rmtree(directory, ignore_errors=True)


def fuzzer_rate(path: Path, seconds: float, seed: int) -> dict[str, Any]:
    """The fuzz loop as it runs, counting violations only (the null server grants all)."""
    cfg = config(path, PAIRS, seed=seed, seconds=seconds, timeout=3.0, record=False)
    result = Fuzzer(cfg).run()
    return {"execs": result.execs, "items": result.items, "seconds": round(result.fuzz_seconds, 3),
            "per_s": round(result.execs_per_s, 1)}


def python_loop_rate(path: Path, seconds: float) -> dict[str, Any]:
    """connect / write / half-close / read to EOF / close, one valid request, in a loop."""
    payload = request(*PAIRS[0])
    target = str(path)
    n = 0
    start = time.monotonic()
    end = start + seconds
    while time.monotonic() < end:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(3.0)
            sock.connect(target)
            with contextlib.suppress(OSError):
                sock.sendall(payload)
                sock.shutdown(socket.SHUT_WR)
            with contextlib.suppress(OSError):
                while sock.recv(4096):
                    pass
        n += 1
    elapsed = time.monotonic() - start
    return {"execs": n, "seconds": round(elapsed, 3), "per_s": round(n / elapsed, 1)}


def c_loop_rate(path: Path, seconds: float, work: Path) -> dict[str, Any] | None:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None
    src, exe = work / "loop.c", work / "loop"
    if not exe.exists():
        src.write_text(C_LOOP)
        subprocess.run([cc, "-O2", "-o", str(exe), str(src)], check=True, timeout=60)
    out = subprocess.run([str(exe), str(path), str(seconds), request(*PAIRS[0]).decode()],
                         capture_output=True, text=True, check=True, timeout=seconds + 30)
    n, elapsed, errors = out.stdout.split()
    return {"execs": int(n), "seconds": round(float(elapsed), 3),
            "per_s": round(int(n) / float(elapsed), 1), "errors": int(errors)}


def measure(seconds: float, seed: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="pc-bench-"))
    figures: dict[str, Any] = {"cpus": os.cpu_count(), "seconds": seconds, "seed": seed}
    try:
        with null_server_process() as path:
            figures["null"] = {"fuzzer": fuzzer_rate(path, seconds, seed),
                               "python_loop": python_loop_rate(path, seconds),
                               "c_loop": c_loop_rate(path, seconds, work)}
        with LocalServer(reference_command(), CREDENTIALS, name="reference") as server:
            figures["reference"] = {"fuzzer": fuzzer_rate(server.socket, seconds, seed),
                                    "python_loop": python_loop_rate(server.socket, seconds),
                                    "c_loop": c_loop_rate(server.socket, seconds, work)}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for side in ("null", "reference"):
        f = figures[side]
        f["fuzzer_vs_python"] = round(f["fuzzer"]["per_s"] / f["python_loop"]["per_s"], 3)
        if f["c_loop"]:
            f["fuzzer_vs_c"] = round(f["fuzzer"]["per_s"] / f["c_loop"]["per_s"], 3)
    figures["target_per_s"] = TARGET_PER_S
    figures["target_met"] = figures["null"]["fuzzer"]["per_s"] >= TARGET_PER_S
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--null-server", metavar="SOCKET", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.null_server:
        null_server(args.null_server)
        return 0
    figures = measure(args.seconds, args.seed)
    print(f"executions per second ({figures['cpus']} CPUs, {args.seconds:g} s each, "
          f"seed {args.seed}):")
    print(f"{'server':<10} {'fuzzer':>10} {'python loop':>12} {'C loop':>10} "
          f"{'fuzzer/python':>14} {'fuzzer/C':>9}")
    for side in ("null", "reference"):
        f = figures[side]
        c = f["c_loop"]["per_s"] if f["c_loop"] else float("nan")
        vs_c = f.get("fuzzer_vs_c", float("nan"))
        print(f"{side:<10} {f['fuzzer']['per_s']:>10.0f} {f['python_loop']['per_s']:>12.0f} "
              f"{c:>10.0f} {f['fuzzer_vs_python']:>14.2f} {vs_c:>9.2f}")
    met = "met" if figures["target_met"] else "NOT met"
    print(f"target: >= {TARGET_PER_S:.0f} fuzzer execs/s against the null server: {met}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if figures["target_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
