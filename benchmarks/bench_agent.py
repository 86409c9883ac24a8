#!/usr/bin/env python3
"""Module attempts per second through the batch agent (target: at least 200/s).

Locally: builds ``pamdrive`` and the reference ``pam_redirector.so`` into a
temporary directory, starts two scenario servers (``grant`` and ``deny``), writes
two services into a temporary confdir, and runs one batch of attempts alternating
between them through ``pam_agent.py``::

    python3 benchmarks/bench_agent.py [--attempts 1000] [--jobs N] [--repeat 3]

Elsewhere (e.g. in the lab container), call :func:`measure` with an exec function,
the agent command there, and the pamdrive arguments of a grant and a deny attempt.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from pamconform.core import resources
from pamconform.drivers.agent import ExecFn, local_agent_argv, local_exec, run_batch
from pamconform.lab.scenario_control import ScenarioProcess

TARGET_PER_S = 200.0


def measure(exec_fn: ExecFn, agent_argv: list[str], grant_argv: list[str],
            deny_argv: list[str], attempts: int = 1000,
            timeout: float = 300.0) -> dict[str, Any]:
    """Run one batch alternating grant/deny; return the rate and the outcome counts."""
    requests = [{"id": i, "argv": grant_argv if i % 2 == 0 else deny_argv, "timeout": 10}
                for i in range(attempts)]
    start = time.monotonic()
    results = run_batch(exec_fn, requests, timeout, agent_argv=agent_argv)
    elapsed = time.monotonic() - start
    outcomes = Counter(
        r["result"]["steps"][0]["name"] if r["status"] == "ran" else r["status"]
        for r in results)
    wrong = sum(
        1 for i, r in enumerate(results)
        if r["status"] != "ran"
        or r["result"]["steps"][0]["name"] != ("PAM_SUCCESS" if i % 2 == 0 else "PAM_AUTH_ERR"))
    return {"attempts": attempts, "seconds": round(elapsed, 3),
            "per_second": round(attempts / elapsed, 1), "outcomes": dict(outcomes),
            "wrong": wrong}


def _build(build: Path) -> None:
    subprocess.run(["make", "-s", "-C", str(resources.containers_dir() / "agent"),
                    f"O={build}"], check=True, timeout=120)
    src = resources.modules_dir() / "pam_redirector"
    subprocess.run(["cc", "-O2", "-fPIC", "-shared",
                    f"-Wl,--version-script={src / 'pam_redirector.map'}",
                    "-o", str(build / "pam_redirector.so"), str(src / "pam_redirector.c"),
                    "-lpam"], check=True, timeout=120)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attempts", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeat", type=int, default=1)
    opts = parser.parse_args()

    build = Path(tempfile.mkdtemp(prefix="pc-bench-", dir="/tmp"))
    servers: list[ScenarioProcess] = []
    try:
        _build(build)
        confdir = build / "pam.d"
        confdir.mkdir()
        argvs = []
        for name in ("grant", "deny"):
            servers.append(ScenarioProcess.local(build / name, scenario=name))
            (confdir / name).write_text(
                f"auth required {build / 'pam_redirector.so'} {build / name} "
                f"server_uid={os.getuid()} timeout=5\n")
            argvs.append(["--service", name, "--user", "alice", "--confdir", str(confdir),
                          "--password", "pw"])
        agent = local_agent_argv(build / "pamdrive", jobs=opts.jobs)
        best = 0.0
        for _ in range(opts.repeat):
            report = measure(local_exec, agent, argvs[0], argvs[1], opts.attempts)
            best = max(best, report["per_second"])
            print(f"local, jobs={opts.jobs}: {report}")
            for server in servers:
                server.log(wait=2)  # keep the servers' records small
        verdict = "OK" if best >= TARGET_PER_S else "BELOW TARGET"
        print(f"best: {best} attempts/s (target {TARGET_PER_S:.0f}): {verdict}")
        return 0 if best >= TARGET_PER_S else 1
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(build, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
