"""How long ``pamconform module modules/pam_redirector --no-lab`` takes (target: <= 20 s).

Runs the root-less tier on the reference module as ``pamconform run`` configures it
(``{socket} timeout=3``), in-process as the invoking user, and prints the wall time of
the whole tier (build, pamdrive compile, trust probe, cases) and its parts: without
memcheck, and with the memcheck cases (when valgrind is installed).

    python3 benchmarks/bench_rootless.py [--repeat N] [--jobs N] [--no-memcheck] [--json]

``--jobs``: cases at once, as the CLI's ``--jobs`` (default 1, one after another).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pamconform.core import resources
from pamconform.core.runner import select, set_jobs
from pamconform.drivers.host_module import run_host_module
from pamconform.lab.module_run import module_cases
from pamconform.lab.module_target import ModuleSpec


def one(with_memcheck: bool) -> dict[str, float | int]:
    spec = ModuleSpec(resources.modules_dir() / "pam_redirector", args="{socket} timeout=3")
    cases = select(module_cases("redirector"), [],
                   [] if with_memcheck else ["redir.module.memcheck-*"])
    start = time.monotonic()
    result = run_host_module(spec, cases, name="reference")
    wall = time.monotonic() - start
    verdicts = [str(r.verdict) for r in result.results]
    memcheck = sum(r.duration_s for r in result.results if "memcheck" in r.case.id)
    hangs = sum(r.duration_s for r in result.results if r.duration_s >= 2.5
                and "memcheck" not in r.case.id)
    return {"wall_s": round(wall, 2), "cases": len(verdicts),
            "ran": sum(v != "SKIPPED" for v in verdicts),
            "fail_or_error": sum(v in ("FAIL", "ERROR") for v in verdicts),
            "memcheck_s": round(memcheck, 2), "hang_cases_s": round(hangs, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--no-memcheck", action="store_true")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    opts = parser.parse_args()
    set_jobs(opts.jobs)
    rows = []
    for with_memcheck in ([False] if opts.no_memcheck else [False, True]):
        for _ in range(opts.repeat):
            rows.append({"memcheck": with_memcheck, **one(with_memcheck)})
    if opts.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        label = "with memcheck   " if row["memcheck"] else "without memcheck"
        print(f"root-less tier, reference module, {label}, --jobs {opts.jobs}: "
              f"{row['wall_s']:6.1f} s "
              f"({row['ran']} of {row['cases']} cases ran, {row['fail_or_error']} FAIL/ERROR; "
              f"hang cases {row['hang_cases_s']} s, memcheck {row['memcheck_s']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
