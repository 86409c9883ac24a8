"""How long the offline ``pamconform audit`` takes on a 20-line stack (target: <= 1 s).

    python3 benchmarks/bench_audit.py [--runs 5] [--json]

Two 20-line ``/etc/pam.d/sshd`` files written to a temporary directory: Debian's sshd
with its common-* includes folded in (``debian``: 9 auth lines, 6 of them modules
the model cannot know), and a stack of 15 auth lines whose modules it cannot know
(``wide``: the most combinations a plausible stack has).  Per stack: the whole command
as a fresh process (interpreter start and imports included, no Docker, the best of
``--runs``), and the audit alone in this process (the model over every combination),
with the combinations tried.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SOCKET = "pam_redirector.so /run/pam_redirector/socket timeout=3"
STACKS = {
    "debian": f"""\
auth       required     pam_nologin.so
auth       required     pam_env.so
auth       [success=3 default=ignore]   pam_unix.so nullok
auth       [success=2 default=ignore]   {SOCKET} use_first_pass
auth       [success=1 default=ignore]   pam_sss.so use_first_pass
auth       requisite    pam_deny.so
auth       required     pam_permit.so
auth       optional     pam_cap.so
auth       optional     pam_faildelay.so delay=2000000
account    required     pam_nologin.so
account    [success=1 new_authtok_reqd=done default=ignore]   pam_unix.so
account    requisite    pam_deny.so
account    required     pam_permit.so
session    required     pam_limits.so
session    required     pam_unix.so
session    optional     pam_systemd.so
session    optional     pam_motd.so
password   requisite    pam_pwquality.so retry=3
password   [success=1 default=ignore]   pam_unix.so obscure use_authtok yescrypt
password   requisite    pam_deny.so
""",
    "wide": "".join([
        "auth       required     pam_faillock.so preauth\n",
        "auth       required     pam_succeed_if.so uid >= 1000 quiet\n",
        "auth       [success=ok default=bad]   pam_access.so\n",
        "auth       requisite    pam_time.so\n",
        "auth       [default=ignore success=ok]   pam_listfile.so item=user sense=deny "
        "file=/etc/deny onerr=succeed\n",
        "auth       optional     pam_gnome_keyring.so\n",
        "auth       [success=2 default=ignore]   pam_unix.so nullok\n",
        f"auth       [success=1 default=ignore]   {SOCKET} use_first_pass\n",
        "auth       requisite    pam_deny.so\n",
        "auth       required     pam_faillock.so authsucc\n",
        "auth       optional     pam_exec.so /usr/local/bin/audit-login\n",
        "auth       required     pam_shells.so\n",
        "auth       required     pam_securetty.so\n",
        "auth       optional     pam_lastlog.so\n",
        "auth       required     pam_permit.so\n",
        "account    required     pam_unix.so\n",
        "account    required     pam_permit.so\n",
        "session    required     pam_unix.so\n",
        "session    optional     pam_systemd.so\n",
        "password   required     pam_unix.so\n",
    ]),
}


def _command(stack: Path, report: Path) -> tuple[float, int]:
    env = {**os.environ, "DOCKER_HOST": "unix:///nonexistent/pc-bench.sock",
           "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pamconform.cli", "audit", str(stack),
                           "--quiet", "--report", str(report)], capture_output=True,
                          text=True, timeout=120, check=False, env=env)
    seconds = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        raise SystemExit(f"audit failed ({proc.returncode}): {proc.stderr.strip()}")
    return seconds, proc.returncode


def _in_process(stack: Path) -> tuple[float, int, list[str]]:
    from pamconform.cli.audit import socket_modules
    from pamconform.model import audit, audit_offline

    start = time.perf_counter()
    known = socket_modules()
    plan = audit.plan(stack, socket_modules=tuple(known))
    result = audit_offline.audit(plan, authenticators=tuple(
        n for n in known if n != plan.socket.module_name))
    seconds = time.perf_counter() - start
    return seconds, sum(s.tried for s in result.states), [s.state for s in result.fail_open]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    figures = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in STACKS.items():
            stack = Path(tmp) / name / "sshd"
            stack.parent.mkdir()
            stack.write_text(text)
            assert text.count("\n") == 20
            command = min(_command(stack, Path(tmp) / f"r-{name}-{k}")[0]
                          for k in range(args.runs))
            alone, tried, fail_open = min(_in_process(stack) for _ in range(args.runs))
            figures[name] = {"lines": 20, "command_s": round(command, 3),
                             "audit_s": round(alone, 4), "combinations": tried,
                             "fail_open": fail_open}
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        for name, f in figures.items():
            print(f"{name:<7} 20 lines: command {f['command_s']:.3f} s (fresh process, "
                  f"no Docker), audit alone {f['audit_s'] * 1000:.1f} ms, "
                  f"{f['combinations']} combinations, fail-open: "
                  f"{', '.join(f['fail_open']) or 'none'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
