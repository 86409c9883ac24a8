#!/usr/bin/env python3
"""What one command and one file write cost in a lab container: through the command
channel (docs/lab.md#channel) and through ``docker exec`` / the archive upload.

In a lab container with the channel and in one without it (``PAMCONFORM_LAB_CHANNEL=0``),
runs ``true``, ``python3 -c pass`` and a file write ``--runs`` times each and prints, per
operation, the wall time and the machine's CPU time (all processes, from /proc/stat: the
engine, runc and the shim are not this process's children). Run it on an otherwise idle
machine. Needs a Docker engine; builds the lab image if needed.

    python3 benchmarks/bench_lab_exec.py [--runs 40]

Prints figures; not a test.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pamconform.core import resources
from pamconform.lab import LabContainer, LabSession, connect, ensure_lab_image
from pamconform.lab.containers import CHANNEL_ENV


def machine_cpu_s() -> float:
    """CPU seconds of the whole machine so far (user, nice, system, irq, softirq)."""
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:]
    return sum(int(fields[i]) for i in (0, 1, 2, 5, 6)) / os.sysconf("SC_CLK_TCK")


def per_op(runs: int, op: Callable[[], object]) -> tuple[float, float]:
    """Milliseconds of wall and of machine CPU per call of ``op``."""
    op()  # warm-up (and the channel's opening)
    wall, cpu = time.monotonic(), machine_cpu_s()
    for _ in range(runs):
        op()
    return ((time.monotonic() - wall) / runs * 1000, (machine_cpu_s() - cpu) / runs * 1000)


def measure(box: LabContainer, runs: int) -> dict[str, tuple[float, float]]:
    return {
        "true": per_op(runs, lambda: box.run(["true"], timeout=10).check()),
        "python3 -c pass": per_op(runs, lambda: box.run(["python3", "-c", "pass"],
                                                        timeout=10).check()),
        "write a file": per_op(runs, lambda: box.put_file("/tmp/pc-bench", b"x" * 4096)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    client = connect()
    image = ensure_lab_image(client, resources.root(), progress=lambda _l: None)
    figures = {}
    with LabSession(client) as session:
        for label, env in (("channel", "1"), ("docker exec", "0")):
            os.environ[CHANNEL_ENV] = env
            box = session.container(image)
            try:
                if (box.channel() is None) is (env == "1"):
                    print(f"{label}: the channel is not as asked ({box.channel_off})",
                          file=sys.stderr)
                    return 1
                figures[label] = measure(box, args.runs)
            finally:
                box.remove()
    print(f"{args.runs} runs each, per operation: wall ms / machine CPU ms")
    for op in figures["channel"]:
        cells = "   ".join(f"{label} {figures[label][op][0]:6.1f} / {figures[label][op][1]:6.1f}"
                           for label in figures)
        print(f"  {op:16s} {cells}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
