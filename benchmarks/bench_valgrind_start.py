#!/usr/bin/env python3
"""What one valgrind start costs in the lab: the floor under every memcheck case.

In a lab container of each distro, times ``valgrind -q /bin/true`` and one memcheck
attempt as the agent runs it (pamdrive under ``valgrind --leak-check=full``, a stack of
pam_permit alone, so the module under test adds nothing), ``--runs`` times each, and
prints the median and the fastest. Needs a Docker engine; builds the lab image if needed.

    python3 benchmarks/bench_valgrind_start.py [--distro bookworm,trixie] [--runs 5]

Prints figures; not a test.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pamconform.core import resources
from pamconform.drivers.agent import CONTAINER_AGENT_ARGV, container_exec, run_batch
from pamconform.lab import LabSession, connect, ensure_lab_image

SERVICE = "pc-bench-permit"
TRUE = "start=$(date +%s%N); valgrind -q /bin/true; echo $(( $(date +%s%N) - start ))"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--distro", default="bookworm")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    client = connect()
    for distro in args.distro.split(","):
        image = ensure_lab_image(client, resources.root(), distro=distro,
                                 progress=lambda _l: None)
        with LabSession(client) as session:
            box = session.container(image)
            box.put_file(f"/etc/pam.d/{SERVICE}",
                         b"auth required pam_permit.so\naccount required pam_permit.so\n")
            bare = [int(box.run(TRUE, timeout=60).check().out.split()[-1]) / 1e6
                    for _ in range(args.runs)]
            request = {"argv": ["--service", SERVICE, "--user", "alice", "--password", "x",
                                "--steps", "authenticate"], "timeout": 60, "valgrind": True}
            agent = [*CONTAINER_AGENT_ARGV, "--jobs", "1"]
            run_batch(container_exec(box), [request], 120, agent_argv=agent)  # warm-up
            walls = []
            for _ in range(args.runs):
                result = run_batch(container_exec(box), [request], 120, agent_argv=agent)[0]
                if result.get("status") != "ran" or result["valgrind"].get("errors") != 0:
                    print(f"{distro}: unexpected attempt: {result}", file=sys.stderr)
                    return 1
                walls.append(float(result["wall_ms"]))
        print(f"{distro} ({image}): valgrind -q /bin/true median {statistics.median(bare):.0f} "
              f"ms (fastest {min(bare):.0f}); memcheck attempt median "
              f"{statistics.median(walls):.0f} ms (fastest {min(walls):.0f}), {args.runs} runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
