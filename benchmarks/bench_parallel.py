#!/usr/bin/env python3
"""``pamconform run`` with its targets one after another and in lanes: wall times, and
whether any verdict changed.

    python3 benchmarks/bench_parallel.py [--parallel 1,2,3] [--gallery] [--no-lab] [--json]
                                         [--write-reference]

Runs ``pamconform run [--gallery] [--no-lab] --parallel N`` from this checkout once per
value (reports into a temporary directory), prints each run's wall time and per-target
times, then compares every run's verdicts with the first one's, case by case and with
``pamconform diff`` (the known upstream findings of docs/known-findings.txt are passed,
as ``./scripts/conformance`` does). Needs the lab (Docker) unless ``--no-lab``.

``--write-reference`` then writes the last run's wall and case times, cut down, to
``pamconform/cli/reference_run.json``: what ``run --parallel`` balances its lanes by when
no earlier report exists (run it with the bundled targets only, no ``--gallery``).

Prints figures; not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def pamconform(*args: str, timeout: float = 3600) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "pamconform.cli", *args], cwd=ROOT, env=env,
                          text=True, capture_output=True, timeout=timeout, check=False)


def one_run(lanes: int, report: Path, extra: list[str]) -> dict[str, Any]:
    start = time.monotonic()
    proc = pamconform("run", *extra, "--parallel", str(lanes), "--quiet", "--known-findings",
                      str(ROOT / "docs" / "known-findings.txt"), "--report", str(report))
    wall = time.monotonic() - start
    data = json.loads((report / "index.json").read_text())
    return {
        "parallel": lanes, "exit": proc.returncode, "wall_s": round(wall, 1),
        "targets": {t["name"]: t["timing"]["wall_s"] for t in data["targets"]},
        "verdicts": {f"{t['name']} {c['id']}": c["verdict"]
                     for t in data["targets"] for c in t["cases"]},
    }


REFERENCE = ROOT / "pamconform" / "cli" / "reference_run.json"


def write_reference(index: Path) -> None:
    """The report at ``index`` cut down to what balances lanes (names, wall and case
    times), written to :data:`REFERENCE`."""
    data = json.loads(index.read_text())
    cut = {"about": "Wall and case times of the bundled targets of `pamconform run` on the "
           "development machine (2 CPUs): how run --parallel balances its lanes before any "
           "report exists. Written by benchmarks/bench_parallel.py --write-reference.",
           "targets": [{"name": t["name"], "timing": {"wall_s": t["timing"]["wall_s"]},
                        "cases": [{"id": c["id"], "duration_s": c["duration_s"]}
                                  for c in t["cases"]]} for t in data["targets"]]}
    REFERENCE.write_text(json.dumps(cut, indent=1) + "\n")
    print(f"wrote {REFERENCE.relative_to(ROOT)} ({len(cut['targets'])} targets)", flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--parallel", default="1,3", help="lane counts, comma-separated")
    p.add_argument("--gallery", action="store_true", help="add the faulty servers")
    p.add_argument("--no-lab", action="store_true", help="no Docker: server targets only")
    p.add_argument("--json", action="store_true")
    p.add_argument("--write-reference", action="store_true",
                   help="write the last run's times to pamconform/cli/reference_run.json")
    args = p.parse_args()
    extra = (["--gallery"] if args.gallery else []) + (["--no-lab"] if args.no_lab else [])
    counts = [int(n) for n in args.parallel.split(",")]
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-parallel-") as tmp:
        for n in counts:
            runs.append(one_run(n, Path(tmp) / f"p{n}", extra))
            r = runs[-1]
            if not args.json:
                slowest = sorted(r["targets"].items(), key=lambda kv: -kv[1])[:3]
                print(f"--parallel {n}: {r['wall_s']:.1f} s, exit {r['exit']}, "
                      f"{len(r['verdicts'])} cases; slowest targets: "
                      + ", ".join(f"{name} {s:.1f} s" for name, s in slowest), flush=True)
        first = runs[0]
        for r, n in zip(runs[1:], counts[1:], strict=True):
            changed = {k: (first["verdicts"].get(k), v) for k, v in r["verdicts"].items()
                       if first["verdicts"].get(k) != v}
            diff = pamconform("diff", str(Path(tmp) / f"p{counts[0]}"), str(Path(tmp) / f"p{n}"),
                              "--time-threshold", "100000")
            r["changed"] = changed
            r["diff"] = diff.stdout.strip().splitlines()[-1:] if diff.stdout else []
            if not args.json:
                print(f"--parallel {n} vs {counts[0]}: {len(changed)} verdicts changed "
                      f"{changed or ''}; pamconform diff: {' '.join(r['diff'])}")
        if args.write_reference:
            write_reference(Path(tmp) / f"p{counts[-1]}" / "index.json")
    if args.json:
        print(json.dumps([{k: v for k, v in r.items() if k != "verdicts"} for r in runs],
                         indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
