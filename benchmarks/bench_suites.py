#!/usr/bin/env python3
"""Wall times of the suites, warm (lab image cached) and, with ``--cold``, cold.

    python3 benchmarks/bench_suites.py [--cold] [--cold-base] [--repeat N] [--json]

Times, with the same ``pamconform`` a user runs (``python -m pamconform.cli`` from this
checkout, reports into a temporary directory):

- server suite: ``pamconform run --no-lab`` (every server case against the bundled
  reference server; no Docker);
- module suite: ``pamconform module modules/pam_redirector --args "{socket} timeout=3"``
  (builds the module in a lab container, drives sshd and su).

Warm: the lab image is built (or found) first, untimed, so the figures are the suites
alone. ``--cold`` then REMOVES this checkout's lab image (``pamconform/lab:<hash>``)
and times the module suite again, image build included; ``--cold-base`` also removes
the base image ``pamconform/base:bookworm`` (rebuilt by ``containers/base-image.sh``,
which may need the network). Other ``pamconform/lab`` tags are left alone. Do not use
``--cold`` while other lab runs share the engine.

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
from collections import Counter
from pathlib import Path
from typing import Any

# the checkout this script sits in, not another install
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ROOT = Path(__file__).resolve().parent.parent

SUITES: dict[str, list[str]] = {
    "server": ["run", "--no-lab"],
    "module": ["module", str(ROOT / "modules" / "pam_redirector"), "--args",
               "{socket} timeout=3"],
}


def run_suite(name: str, report: Path) -> dict[str, Any]:
    """Run one suite as a user would; return its wall time and verdict counts."""
    argv = [sys.executable, "-m", "pamconform.cli", *SUITES[name], "--report", str(report)]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    log = report.with_suffix(".log")
    start = time.monotonic()
    with open(log, "wb") as out:
        rc = subprocess.run(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                            timeout=3600, check=False).returncode
    wall = time.monotonic() - start
    counts: Counter[str] = Counter()
    index = report / "index.json"
    if index.is_file():
        data = json.loads(index.read_text())
        counts.update(c["verdict"] for t in data["targets"] for c in t["cases"])
    return {"suite": name, "wall_s": round(wall, 1), "exit": rc,
            "cases": sum(counts.values()), "verdicts": dict(counts), "log": str(log)}


def prime_lab(remove: bool, remove_base: bool) -> tuple[str, float]:
    """Build (or find) the lab image; with ``remove``, delete it (and maybe the base) instead."""
    from pamconform import resources
    from pamconform.lab import BASE_TAG, connect, ensure_lab_image
    from pamconform.lab.images import lab_image_tag

    client = connect()
    if remove:
        removed = []
        try:
            tag = lab_image_tag(client, resources.root())
        except Exception:  # no base image: nothing built from it either
            tag = ""
        for ref in [tag] + ([BASE_TAG] if remove_base else []):
            if not ref:
                continue
            try:
                client.images.remove(ref, force=False)
                removed.append(ref)
            except Exception as exc:
                print(f"  could not remove {ref}: {exc}")
        return ", ".join(removed) or "nothing", 0.0
    start = time.monotonic()
    def say(line: str) -> None:  # the build's own log is long: keep pamconform's lines
        if line.startswith(("building", "built", "base image")):
            print(f"  {line}")

    tag = ensure_lab_image(client, resources.root(), progress=say)
    return tag, time.monotonic() - start


def _line(mode: str, r: dict[str, Any]) -> str:
    verdicts = ", ".join(f"{n} {v}" for v, n in sorted(r["verdicts"].items()))
    return (f"{r['suite']:<7} {mode:<5} {r['wall_s']:>8.1f} {r['cases']:>6}  exit {r['exit']}  "
            f"{verdicts}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--cold", action="store_true",
                        help="also time the module suite after removing the lab image")
    parser.add_argument("--cold-base", action="store_true",
                        help="with --cold, remove the base image as well")
    parser.add_argument("--repeat", type=int, default=1, help="warm runs of each suite")
    parser.add_argument("--suites", default="server,module",
                        help="comma-separated, of: " + ", ".join(SUITES))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    names = [s for s in args.suites.split(",") if s]
    unknown = [s for s in names if s not in SUITES]
    if unknown:
        parser.error(f"unknown suite(s): {', '.join(unknown)}")
    results: list[dict[str, Any]] = []
    tmp = Path(tempfile.mkdtemp(prefix="pc-suites-", dir="/tmp"))
    print(f"{os.cpu_count()} CPUs; reports and logs in {tmp}")
    if "module" in names:
        tag, took = prime_lab(remove=False, remove_base=False)
        print(f"warm-up: lab image {tag} ready in {took:.1f} s (untimed below)")
    print(f"{'suite':<7} {'mode':<5} {'wall s':>8} {'cases':>6}")
    for i in range(args.repeat):
        for name in names:
            r = run_suite(name, tmp / f"{name}-warm-{i}")
            r["mode"] = "warm"
            results.append(r)
            print(_line("warm", r), flush=True)
    if args.cold and "module" in names:
        removed, _ = prime_lab(remove=True, remove_base=args.cold_base)
        print(f"cold: removed {removed}")
        r = run_suite("module", tmp / "module-cold")
        r["mode"] = "cold"
        results.append(r)
        print(_line("cold", r), flush=True)
    elif not args.cold:
        print("(cold figures: --cold, which removes the lab image first)")
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
