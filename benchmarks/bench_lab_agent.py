#!/usr/bin/env python3
"""Module attempts per second through the batch agent inside a lab container.

Two scenario servers (one granting, one denying) run in the container; one batch of
alternating grant/deny pamdrive attempts goes through one ``docker exec``. Target: at
least 200 attempts/s. Prints the figures; needs a Docker engine.

    python3 benchmarks/bench_lab_agent.py [--attempts 1000]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_agent import measure

from pamconform.core import resources
from pamconform.drivers.agent import CONTAINER_AGENT_ARGV, container_exec
from pamconform.lab import LabSession, connect, ensure_lab_image
from pamconform.lab.scenario_control import ScenarioProcess

SERVER = "/opt/pamconform/servers/scenario_server.py"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attempts", type=int, default=1000)
    args = parser.parse_args()
    client = connect()
    image = ensure_lab_image(client, resources.root(), progress=lambda _l: None)
    with LabSession(client) as session:
        box = session.container(image)
        procs = []
        for name, scenario in (("grant", "grant"), ("deny", "deny")):
            sock = f"/run/pc-bench-{name}.sock"
            procs.append(ScenarioProcess(box.exec_argv(
                ["python3", SERVER, sock, "--control", "-", "--scenario", scenario],
                timeout=None)))
            box.put_file(f"/etc/pam.d/pc-bench-{name}",
                         f"auth required pam_redirector.so {sock} timeout=3\n".encode())
        argv = {n: ["--service", f"pc-bench-{n}", "--user", "alice", "--password", "pw"]
                for n in ("grant", "deny")}
        try:
            figures = measure(container_exec(box), CONTAINER_AGENT_ARGV, argv["grant"],
                              argv["deny"], attempts=args.attempts)
        finally:
            for proc in procs:
                proc.stop()
    print(f"lab agent: {figures['attempts']} attempts in {figures['seconds']} s = "
          f"{figures['per_second']} attempts/s (target 200); outcomes {figures['outcomes']}, "
          f"wrong {figures['wrong']}")
    return 0 if figures["wrong"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
