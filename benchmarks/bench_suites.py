#!/usr/bin/env python3
"""Wall times of the suites, warm (lab image cached) and, with ``--cold``, cold.

    python3 benchmarks/bench_suites.py [--cold] [--cold-base] [--repeat N] [--jobs 1,4] [--json]

Times, with the same ``pamconform`` a user runs (``python -m pamconform.cli`` from this
checkout, reports into a temporary directory):

- server suite: ``pamconform run --no-lab`` (every server case against the bundled
  reference servers; no Docker);
- redirector-server: ``pamconform run --no-lab --cases 'redir.server.*'`` (the redirector
  server suite against its reference server alone);
- module suite: ``pamconform module modules/pam_redirector --args "{socket} timeout=3"``
  (builds the module in a lab container, drives sshd and su).

Warm: the lab image is built (or found) first, untimed, so the figures are the suites
alone. ``--cold`` then REMOVES the lab images (every ``pamconform/lab`` tag no container
uses) and times the module suite again, image build included (printed apart);
``--cold-base`` also removes the base image ``pamconform/base:bookworm`` (rebuilt by
``containers/base-image.sh``, which may need the network). Layers shared with an image
a container still uses stay cached, which makes "cold" warmer: stop other lab runs
first (``docker ps --filter label=pamconform=1``).

``--jobs 1,4`` runs each suite once per value (``pamconform --jobs N``: 1 is one case
after another); without it the command's default.

Prints figures; not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import re
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
    "redirector-server": ["run", "--no-lab", "--cases", "redir.server.*"],
    "module": ["module", str(ROOT / "modules" / "pam_redirector"), "--args",
               "{socket} timeout=3"],
}


def run_suite(name: str, report: Path, jobs: int | None = None) -> dict[str, Any]:
    """Run one suite as a user would; return its wall time and verdict counts."""
    argv = [sys.executable, "-m", "pamconform.cli", *SUITES[name], "--report", str(report)]
    argv += ["--jobs", str(jobs)] if jobs else []
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
    return {"suite": name, "jobs": jobs or "default", "wall_s": round(wall, 1), "exit": rc,
            "cases": sum(counts.values()), "verdicts": dict(counts), "log": str(log)}


def prime_lab() -> tuple[str, float]:
    """Build (or find) the lab image, untimed for the suites; return it and the time."""
    from pamconform.core import resources
    from pamconform.lab import connect, ensure_lab_image

    def say(line: str) -> None:  # the build's own log is long: keep pamconform's lines
        if line.startswith(("building", "built", "base image")):
            print(f"  {line}")

    start = time.monotonic()
    tag = ensure_lab_image(connect(), resources.root(), progress=say)
    return tag, time.monotonic() - start


def remove_lab_images(remove_base: bool) -> list[str]:
    """Remove every ``pamconform/lab`` tag (and maybe the base) no container uses.

    Docker refuses to remove an image a container (running or stopped) uses; such tags
    stay, and so do the layers they share with the rebuilt image.
    """
    import docker.errors

    from pamconform.lab import BASE_TAG, LAB_REPO, connect

    client = connect()
    refs = [t for image in client.images.list(name=LAB_REPO) for t in image.tags]
    refs += [BASE_TAG] if remove_base else []
    removed = []
    for ref in refs:
        try:
            client.images.remove(ref, force=False)
            removed.append(ref)
        except docker.errors.APIError as exc:
            print(f"  kept {ref}: {exc.explanation or exc}")
    return removed


def build_seconds(log: str) -> float | None:
    """The image build time a module run reported ('built pamconform/lab:... in N s')."""
    m = re.search(r"built pamconform/lab:\S+ in (\d+) s", log)
    return float(m[1]) if m else None


def _line(mode: str, r: dict[str, Any]) -> str:
    verdicts = ", ".join(f"{n} {v}" for v, n in sorted(r["verdicts"].items()))
    return (f"{r['suite']:<17} {mode:<5} {r['jobs']!s:>7} {r['wall_s']:>8.1f} {r['cases']:>6}  "
            f"exit {r['exit']}  "
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
    parser.add_argument("--jobs", default="",
                        help="comma-separated --jobs values, each suite run once per value "
                             "('default': without --jobs)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    names = [s for s in args.suites.split(",") if s]
    unknown = [s for s in names if s not in SUITES]
    if unknown:
        parser.error(f"unknown suite(s): {', '.join(unknown)}")
    try:
        jobs = [None if j == "default" else int(j) for j in args.jobs.split(",") if j] or [None]
    except ValueError:
        parser.error(f"--jobs {args.jobs}: comma-separated numbers or 'default'")
    if any(n is not None and n < 1 for n in jobs):
        parser.error(f"--jobs {args.jobs}: each value at least 1")
    results: list[dict[str, Any]] = []
    tmp = Path(tempfile.mkdtemp(prefix="pc-suites-", dir="/tmp"))
    print(f"{os.cpu_count()} CPUs; reports and logs in {tmp}")
    if "module" in names:
        tag, took = prime_lab()
        print(f"warm-up: lab image {tag} ready in {took:.1f} s (untimed below)")
    print(f"{'suite':<17} {'mode':<5} {'jobs':>7} {'wall s':>8} {'cases':>6}")
    for i in range(args.repeat):
        for name in names:
            for n in jobs:
                r = run_suite(name, tmp / f"{name}-warm-{i}-j{n or 0}", n)
                r["mode"] = "warm"
                results.append(r)
                print(_line("warm", r), flush=True)
    if args.cold and "module" in names:
        removed = remove_lab_images(args.cold_base)
        print(f"cold: removed {len(removed)} image(s): {', '.join(removed) or 'none'}")
        r = run_suite("module", tmp / "module-cold")
        r["mode"] = "cold"
        r["image_build_s"] = build_seconds(Path(r["log"]).read_text(errors="replace"))
        results.append(r)
        print(_line("cold", r) + f"  (image build {r['image_build_s']} s)", flush=True)
    elif not args.cold:
        print("(cold figures: --cold, which removes the lab image first)")
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
