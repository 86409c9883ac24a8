"""The lab container's end of the command channel (``pamconform.lab.channel``).

Runs inside a lab container as root (``python3 channel_server.py``), standard library
only: each line on stdin is a request, each line on stdout the reply to one, in the order
they end. A request runs one command the way ``docker exec`` with coreutils ``timeout -k
KILL_GRACE TIMEOUT`` would, without the cost of an exec (about 60 ms of CPU for the engine,
runc and the shim; a few ms here)::

    {"id": 7, "argv": ["useradd", "bob"], "timeout": 10, "stdin": B64 | null,
     "env": {...} | null, "cwd": "/" | null, "max_output": 65536}
    {"id": 7, "rc": 0, "stdout": B64, "stderr": B64, "timed_out": false}

or writes a file (``{"id": 8, "write": PATH, "data": B64, "mode": 420}``: the parents
made, replaced through a temporary file in the same directory) or reads one (``{"id": 9,
"read": PATH}``: ``data``); ``error`` says why one could not be done.

Timeouts as ``timeout -k``: TERM to the command's process group at ``timeout`` (exit 124),
KILL after ``KILL_GRACE_S`` more (exit 137, as timeout, which KILLs its own group too); a
script without ``#!`` runs under ``/bin/sh`` (execvp's rule, which timeout follows).
Output is what came by ``IO_DRAIN_S`` after the command ended, as Docker reads an exec's:
a background child may hold the pipes open for as long as it lives.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import IO, Any

#: As the ``-k`` of the exec path's coreutils ``timeout``.
KILL_GRACE_S = 2.0
#: How long a KILLed command is waited for before the reply goes (137 all the same).
REAP_S = 0.5
#: What this server's own start puts in its environment, not the commands'.
OWN_ENV = frozenset({"PYTHONCOERCECLOCALE"})
#: How long the output is read after the command ended, as Docker reads an exec's.
IO_DRAIN_S = 2.0
#: What a request's output keeps, unless it asks for less.
MAX_OUTPUT = 1 << 20
TIMEOUT_EXIT = 124
KILLED_EXIT = 128 + signal.SIGKILL

_out_lock = threading.Lock()


def reply(obj: dict[str, Any]) -> None:
    line = json.dumps(obj, separators=(",", ":")) + "\n"
    with _out_lock:
        sys.stdout.write(line)
        sys.stdout.flush()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _drain(stream: IO[bytes], keep: bytearray, cap: int) -> None:
    while True:
        chunk = stream.read1(1 << 16)  # type: ignore[attr-defined]
        if not chunk:
            return
        room = cap - len(keep)
        if room > 0:
            keep += chunk[:room]


def _feed(stream: IO[bytes], data: bytes) -> None:
    try:
        stream.write(data)
    except (BrokenPipeError, ValueError):
        pass  # the command stopped reading; its output tells what happened
    finally:
        with contextlib.suppress(OSError):
            stream.close()


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


def _spawn(argv: list[str], stdin: bool, env: dict[str, str], cwd: str | None
           ) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd,
                            start_new_session=True)


def run_command(req: dict[str, Any]) -> dict[str, Any]:
    """One command, bounded as ``timeout -k KILL_GRACE_S req["timeout"]`` bounds it."""
    timeout = float(req["timeout"])
    cap = int(req.get("max_output", MAX_OUTPUT))
    stdin = req.get("stdin")
    env = {k: v for k, v in os.environ.items() if k not in OWN_ENV}
    env.update(req.get("env") or {})
    argv = [str(a) for a in req["argv"]]
    try:
        try:
            proc = _spawn(argv, stdin is not None, env, req.get("cwd") or None)
        except OSError as exc:  # execvp, as timeout uses, runs a script without #! by sh
            if exc.errno != errno.ENOEXEC:
                raise
            proc = _spawn(["/bin/sh", *argv], stdin is not None, env, req.get("cwd") or None)
    except OSError as exc:  # as the exec path's timeout says it: 127 not found, else 126
        code = 127 if isinstance(exc, FileNotFoundError) else 126
        text = f"timeout: failed to run command \u2018{req['argv'][0]}\u2019: {exc.strerror}\n"
        return {"rc": code, "stdout": "", "stderr": _b64(text.encode()),
                "timed_out": False}
    out, err = bytearray(), bytearray()
    threads = [threading.Thread(target=_drain, args=(proc.stdout, out, cap), daemon=True),
               threading.Thread(target=_drain, args=(proc.stderr, err, cap), daemon=True)]
    if stdin is not None:
        threads.append(threading.Thread(target=_feed, daemon=True, args=(
            proc.stdin, base64.b64decode(stdin))))
    for t in threads:
        t.start()
    timed_out = False
    try:
        code = proc.wait(timeout)
        if code < 0:  # a signal: coreutils timeout dies of it too, so the exec says 128+N
            code = 128 - code
    except subprocess.TimeoutExpired:
        timed_out = True
        _signal_group(proc.pid, signal.SIGTERM)
        _signal_group(proc.pid, signal.SIGCONT)  # as timeout does: a stopped one ends too
        try:
            proc.wait(KILL_GRACE_S)
            code = TIMEOUT_EXIT
        except subprocess.TimeoutExpired:
            _signal_group(proc.pid, signal.SIGKILL)
            code = KILLED_EXIT  # as timeout, which KILLs its own group too and is gone
            with contextlib.suppress(subprocess.TimeoutExpired):  # reaped later if unkillable
                proc.wait(REAP_S)
    # as an exec's output: what comes within IO_DRAIN_S of the end (a background child
    # may hold the pipes open for as long as it lives)
    drained = time.monotonic() + IO_DRAIN_S
    for t in threads[:2]:
        t.join(max(0.0, drained - time.monotonic()))
    return {"rc": code, "stdout": _b64(bytes(out[:cap])), "stderr": _b64(bytes(err[:cap])),
            "timed_out": timed_out}


def write_file(req: dict[str, Any]) -> dict[str, Any]:
    path = str(req["write"])
    parent = os.path.dirname(path) or "/"
    os.makedirs(parent, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=parent, prefix=".pc-write-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(base64.b64decode(req["data"]))
        os.chmod(tmp, int(req["mode"]))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return {}


def read_file(req: dict[str, Any]) -> dict[str, Any]:
    with open(str(req["read"]), "rb") as f:
        return {"data": _b64(f.read())}


def serve(req: dict[str, Any]) -> None:
    try:
        if "write" in req:
            out = write_file(req)
        elif "read" in req:
            out = read_file(req)
        else:
            out = run_command(req)
    except Exception as exc:  # every failure is a reply, never a dead channel
        out = {"error": f"{type(exc).__name__}: {exc}"}
    reply({"id": req.get("id"), **out})


def main() -> int:
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    for line in sys.stdin.buffer:
        if not line.endswith(b"\n"):  # cut off: the host did not finish sending it
            break
        try:
            req = json.loads(line)
        except ValueError as exc:
            reply({"id": None, "error": f"unreadable request: {exc}"})
            continue
        threading.Thread(target=serve, args=(req,), daemon=True).start()
    return 0


if __name__ == "__main__":
    sys.exit(main())
