"""Harness side of the PAM batch agent (``containers/agent/pam_agent.py``).

One batch is one agent process: every request goes to its stdin as a JSON line and
every result comes back on its stdout, so a batch costs one ``docker exec`` however
many attempts it holds.  The command is run by an *exec function*, which hides
where it runs: :func:`local_exec` on the host, or :func:`container_exec` (a lab
container's :meth:`~pamconform.lab.LabContainer.run`).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pamconform.core import resources
from pamconform.core.errors import HarnessError

#: ``exec_fn(argv, stdin, timeout) -> (exit status, stdout, stderr)``
ExecFn = Callable[[list[str], bytes, float], tuple[int, bytes, bytes]]

#: Where the lab image is expected to hold the agent (pamdrive beside it).
CONTAINER_AGENT_ARGV = ["python3", "/usr/local/lib/pamconform/agent/pam_agent.py"]


class AgentError(HarnessError):
    """The agent did not answer for every request (the harness broke, not the module)."""


def agent_dir() -> Path:
    """The bundled agent sources (``pam_agent.py``, ``pamdrive.c``, ``Makefile``)."""
    return resources.containers_dir() / "agent"


def local_agent_argv(pamdrive: str | os.PathLike[str], *, jobs: int | None = None,
                     python: str = sys.executable) -> list[str]:
    """The command running the bundled agent on the host with a given ``pamdrive``.

    >>> local_agent_argv("/tmp/b/pamdrive", jobs=2)[-4:]
    ['--pamdrive', '/tmp/b/pamdrive', '--jobs', '2']
    """
    argv = [python, str(agent_dir() / "pam_agent.py"), "--pamdrive", os.fspath(pamdrive)]
    if jobs is not None:
        argv += ["--jobs", str(jobs)]
    return argv


def local_exec(argv: list[str], stdin: bytes, timeout: float) -> tuple[int, bytes, bytes]:
    """Run ``argv`` on the host; on timeout kill its process group and return what came.

    The exit status is then ``-9``.
    """
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        out, err = kill_and_collect(proc)
        return -signal.SIGKILL, out, err  # stopped on timeout, whichever signal ended it
    return proc.returncode, out, err


#: How long the output of a killed process group may take to end.
KILLED_GRACE_S = 10.0


#: How long a process group told to stop (SIGTERM) has before it is killed: the batch
#: agent then kills the pamdrive runs it started in sessions of their own.
TERM_GRACE_S = 1.0


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to ``proc``'s process group, SIGKILL after :data:`TERM_GRACE_S`."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(TERM_GRACE_S)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def kill_and_collect(proc: subprocess.Popen[bytes]) -> tuple[bytes, bytes]:
    """Stop ``proc``'s process group (:func:`stop_group`) and return what it wrote;
    bounded even when a grandchild that left the group (``setsid``) holds the pipes open:
    then the pipes are closed and nothing is returned."""
    stop_group(proc)
    try:
        return proc.communicate(timeout=KILLED_GRACE_S)
    except subprocess.TimeoutExpired:
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)
        return b"", b""


#: An attempt under valgrind still using the CPU at its timeout (valgrind slowed by a
#: loaded machine) is given up to this many times its timeout before it is called hung;
#: one that waits (a module blocked on a socket) is hung at its timeout.
VALGRIND_BUSY_FACTOR = 2.0


def valgrind_limits(request: dict[str, Any]) -> dict[str, Any]:
    """``request`` with its ``busy_limit`` when it runs under valgrind."""
    if not request.get("valgrind"):
        return request
    return dict(request, busy_limit=float(request["timeout"]) * VALGRIND_BUSY_FACTOR)


def attempt_limit(request: dict[str, Any]) -> float:
    """The longest one attempt of ``request`` may take (for a batch's budget)."""
    return float(request.get("busy_limit") or request["timeout"])


def run_batch(exec_fn: ExecFn, requests: list[dict[str, Any]], timeout: float, *,
              agent_argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Run ``requests`` through one agent process; results in request order.

    A request without an ``id`` gets one (its index).  ``agent_argv`` defaults to
    :data:`CONTAINER_AGENT_ARGV`.  Raises :class:`AgentError` when a result is
    missing (agent crashed, batch ``timeout`` reached) or ids are duplicated.
    """
    argv = list(agent_argv or CONTAINER_AGENT_ARGV)
    sent: list[dict[str, Any]] = []
    keys: list[str] = []
    for index, request in enumerate(requests):
        item = dict(request)
        item.setdefault("id", index)
        key = json.dumps(item["id"], sort_keys=True)
        sent.append(item)
        keys.append(key)
    if len(set(keys)) != len(keys):
        raise AgentError("duplicate request ids in one batch")
    if not sent:
        return []
    stdin = b"".join(json.dumps(item).encode() + b"\n" for item in sent)
    status, out, err = exec_fn(argv, stdin, timeout)

    by_key: dict[str, dict[str, Any]] = {}
    for line in out.splitlines():
        with contextlib.suppress(ValueError):
            result = json.loads(line)
            if isinstance(result, dict) and "id" in result:
                by_key[json.dumps(result["id"], sort_keys=True)] = result
    missing = [key for key in keys if key not in by_key]
    if missing:
        tail = err.decode("utf-8", "replace")[-1500:]
        raise AgentError(
            f"agent answered {len(keys) - len(missing)} of {len(keys)} attempts "
            f"(exit status {status}; first missing id {missing[0]}); stderr: {tail}")
    return [by_key[key] for key in keys]



def container_exec(box: Any) -> ExecFn:
    """An ExecFn running commands in a lab container (``LabContainer.run``)."""

    def run(argv: list[str], stdin: bytes, timeout: float) -> tuple[int, bytes, bytes]:
        res = box.run(argv, stdin=stdin, timeout=timeout)
        if res.timed_out:
            raise AgentError(f"agent batch timed out after {timeout:.0f} s in {box.name}")
        return res.exit_code, res.stdout, res.stderr

    return run
