"""Real libpam for stack checks: a lab container with one scenario server per server state.

Every state lives on its own socket at once (``/run/pc-chain/<state>.sock``; ``down``
is a path with nothing behind it), so one agent batch can mix stacks and states: a
stack names the state's socket in its module line.  Files go in with one tar per
batch; attempts run through the batch agent (``pamdrive`` per attempt).

    with StackLab.open() as lab:
        lab.put_files({"/tmp/pc-chain/b1/s1": "auth required pam_permit.so\\n"})
        [result] = lab.run([lab.request("s1", confdir="/tmp/pc-chain/b1")])

``single_file=True`` moves ``/etc/pam.d`` away in the (throw-away) container, so
libpam reads ``/etc/pam.conf``; requests then go without ``--confdir``.
"""

from __future__ import annotations

import contextlib
import io
import json
import posixpath
import tarfile
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pamconform.core.errors import HarnessError
from pamconform.drivers.agent import CONTAINER_AGENT_ARGV, container_exec, run_batch
from pamconform.lab.images import Progress, quiet

SOCKET_DIR = "/run/pc-chain"
STACK_ROOT = "/tmp/pc-chain"
SERVERS = "/opt/pamconform/servers"
USER = "alice"
PASSWORD = "alice-auth-pw"
#: pam_redirector's timeout in the stacks (bounds the hung state).
MODULE_TIMEOUT_S = 0.5
#: What the garbage state replies: a reply an atoi()-based module would take for a grant.
GARBAGE_REPLY = b"0garbage\n"
#: The steps every stack check runs (``--keep-going``).
ALL_STEPS = ("authenticate", "setcred", "acct_mgmt", "open_session", "close_session",
             "chauthtok")
#: scenario server scenario of each state (down: no server)
SCENARIOS = {"grant": "grant", "deny": "deny", "hung": "silence", "garbage": "malformed"}
#: the scenario a server starts with (garbage needs its reply set afterwards)
_FIRST = {"grant": "grant", "deny": "deny", "hung": "silence", "garbage": "deny"}

_SET_SCENARIO = (
    "import json,socket,sys\n"
    "s=socket.socket(socket.AF_UNIX,socket.SOCK_STREAM);s.settimeout(5);s.connect(sys.argv[1])\n"
    "s.sendall(json.dumps({'op':'set','scenario':sys.argv[2],'args':json.loads(sys.argv[3])})"
    ".encode()+b'\\n')\n"
    "r=b''\n"
    "while not r.endswith(b'\\n'):\n"
    "    c=s.recv(4096)\n"
    "    if not c: break\n"
    "    r+=c\n"
    "print(r.decode().strip())\n"
    "sys.exit(0 if json.loads(r).get('ok') else 1)\n"
)


def socket_path(state: str) -> str:
    """The socket a stack names for a server state."""
    return f"{SOCKET_DIR}/{state}.sock"


def module_args(state: str) -> str:
    """pam_redirector's arguments for a state."""
    return f"{socket_path(state)} timeout={MODULE_TIMEOUT_S:g}"


def tar_files(files: Mapping[str, str | bytes], mode: int = 0o644) -> bytes:
    """A tar of absolute paths (written relative to ``/``), root-owned."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        dirs: set[str] = set()
        for path in sorted(files):
            parent = posixpath.dirname(path)
            parts = parent.strip("/").split("/")
            for k in range(1, len(parts) + 1):
                d = "/".join(parts[:k])
                if d and d not in dirs and d not in ("tmp", "etc", "run"):
                    dirs.add(d)
                    info = tarfile.TarInfo(d)
                    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, int(time.time())
                    tar.addfile(info)
        for path, data in sorted(files.items()):
            raw = data.encode("latin-1") if isinstance(data, str) else data
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode, info.mtime = len(raw), mode, int(time.time())
            tar.addfile(info, io.BytesIO(raw))
    return buf.getvalue()


class StackLab:
    """A lab container prepared for stack checks (see the module docstring)."""

    def __init__(self, box: Any, *, jobs: int = 8, batch_timeout: float = 300.0) -> None:
        self.box = box
        self.jobs = jobs
        self.batch_timeout = batch_timeout
        self.single_file = False
        self.batches = 0
        self.attempts = 0

    # ------------------------------------------------------------------ set-up
    @classmethod
    @contextlib.contextmanager
    def open(cls, *, single_file: bool = False, say: Progress = quiet,
             client: Any = None, jobs: int = 8, keep: bool = False) -> Iterator[StackLab]:
        """A fresh lab container (removed afterwards, unless ``keep``) with the servers
        running.

        Raises EngineUnavailable (no engine) or LabBuildError.
        """
        from pamconform.core import resources
        from pamconform.lab import LabSession, connect, ensure_lab_image

        own = client is None
        client = client or connect()
        try:
            image = ensure_lab_image(client, resources.root(), progress=say)
            with LabSession(client, keep=keep) as session:
                lab = cls(session.container(image), jobs=jobs)
                lab.setup(single_file=single_file)
                yield lab
        finally:
            if own:
                client.close()

    def sh(self, script: str, timeout: float = 30) -> str:
        """Run a script in the container; its stdout (a failure is a harness error)."""
        res = self.box.run(script, timeout=timeout)
        if not res.ok:
            why = "timed out" if res.timed_out else f"exit {res.exit_code}"
            raise HarnessError(f"lab command failed ({why}): {script[:200]}\n{res.err[-800:]}")
        return str(res.out)

    def setup(self, *, single_file: bool = False) -> None:
        """Start a scenario server per state; in single-file mode move /etc/pam.d away."""
        starts = []
        for state in SCENARIOS:
            scenario = _FIRST[state]
            starts.append(
                f"setsid nohup python3 {SERVERS}/scenario_server.py {socket_path(state)} "
                f"--control {SOCKET_DIR}/{state}.ctl --scenario {scenario} "
                f">>/var/log/pc-chain-{state}.log 2>&1 </dev/null &")
        waits = " ".join(f"[ -S {socket_path(s)} ] &&" for s in SCENARIOS)
        self.sh(f"mkdir -p -m 0700 {SOCKET_DIR} && mkdir -p {STACK_ROOT} && rm -f "
                f"{socket_path('down')} && " + " ".join(starts)
                + f" for i in $(seq 100); do {waits} exit 0; sleep 0.1; done; "
                "tail -n 5 /var/log/pc-chain-*.log >&2; exit 1")
        res = self.box.run(["python3", "-c", _SET_SCENARIO, f"{SOCKET_DIR}/garbage.ctl",
                            "malformed", json.dumps({"reply": GARBAGE_REPLY.hex()})], timeout=15)
        if not res.ok:
            raise HarnessError(f"could not set the garbage scenario: {res.out} {res.err}")
        if single_file:
            self.sh("mv /etc/pam.d /etc/pam.d.moved-away && ! [ -e /usr/lib/pam.d ]")
            self.single_file = True

    # ------------------------------------------------------------------ files and runs
    def put_files(self, files: Mapping[str, str | bytes]) -> None:
        """Write files (absolute paths) in one tar."""
        if files and not self.box.container.put_archive("/", tar_files(files)):
            raise HarnessError("put_archive of the stack files failed")

    def request(self, service: str, *, confdir: str | None = None,
                steps: Sequence[str] = ALL_STEPS, keep_going: bool = True,
                user: str = USER, password: str = PASSWORD, rid: Any = None,
                timeout: float = 10.0) -> dict[str, Any]:
        """An agent request running pamdrive for one service."""
        argv = ["--service", service, "--user", user]
        if confdir is not None:
            argv += ["--confdir", confdir]
        argv += ["--password", password, "--password", password, "--steps", ",".join(steps)]
        if keep_going:
            argv.append("--keep-going")
        req: dict[str, Any] = {"argv": argv, "timeout": timeout}
        if rid is not None:
            req["id"] = rid
        return req

    def run(self, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """One agent batch; results in request order."""
        argv = [*CONTAINER_AGENT_ARGV, "--jobs", str(self.jobs)]
        results = run_batch(container_exec(self.box), requests, self.batch_timeout,
                            agent_argv=argv)
        self.batches += 1
        self.attempts += len(requests)
        return results

    def installed_modules(self, module_dir: str = "/lib/x86_64-linux-gnu/security") -> set[str]:
        """The module files present in the container."""
        out = self.sh(f"ls -1 {module_dir}")
        return {f"{module_dir}/{name}" for name in out.split()}

    def log_tail(self, lines: int = 20) -> str:
        return self.sh(f"tail -n {lines} /var/log/pc-chain-*.log || true")

