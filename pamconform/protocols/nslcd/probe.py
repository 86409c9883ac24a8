"""Run a plan of nslcd exchanges and socket checks; report each as a JSON-able dict.

One code path for both places a daemon lives: the harness calls :func:`run_plan` on a
host socket, and the lab runs ``python3 -m <package>.probe`` inside the container with
the plan as JSON on stdin (passwords never in argv) and prints the results as JSON.

A plan is ``{"socket": PATH, "parallel": bool, "ops": [op, ...]}``. An op is either
``{"op": "exchange", "chunks": [hex, ...], "expect": ACTION, "timeout": S, "pause": S,
"delay": S, "uid": UID or null}`` (several writes, then read one reply under one
deadline; with ``uid`` the exchange runs in a forked child that switched to that uid and
gid, so the daemon sees an unprivileged peer) or ``{"op": "stat"}`` (the socket's and
its directory's mode and owner). Standard library only.
"""

# Self-contained on purpose: lab.py copies this file into the nslcd container (see
# client.py). Its fork-as-another-uid helper (_as_uid) therefore repeats the shape of
# drivers/peer.py's connect_as instead of importing it.

from __future__ import annotations

import contextlib
import json
import os
import select
import stat
import sys
import threading
import time
from typing import Any

from .client import Answer, exchange
from .driver import outcome_json

#: Reply bytes kept (hex) for evidence; a PAM reply is far shorter.
KEEP_RECEIVED = 512


def _exchange(path: str, op: dict[str, Any]) -> dict[str, Any]:
    chunks = [bytes.fromhex(c) for c in op["chunks"]]
    if op.get("delay"):
        time.sleep(float(op["delay"]))
    outcome = exchange(path, chunks, int(op["expect"]), timeout=float(op["timeout"]),
                       pause=float(op.get("pause", 0.0)))
    out = outcome_json(outcome)
    received = outcome.received
    out["received_hex"] = received[:KEEP_RECEIVED].hex()
    out["received_len"] = len(received)
    if isinstance(outcome, Answer):
        out["trailing"] = outcome.trailing
    return out


def _as_uid(path: str, op: dict[str, Any]) -> dict[str, Any]:
    """The exchange in a forked child running as ``op["uid"]`` (the parent must be root)."""
    uid = int(op["uid"])
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        os.close(rfd)
        code = 0
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            body = json.dumps(_exchange(path, op)).encode()
        except BaseException as exc:  # reported to the parent, never raised
            body = json.dumps({"ok": False, "kind": "harness",
                               "detail": f"{type(exc).__name__}: {exc}"}).encode()
            code = 1
        os.write(wfd, body)
        os._exit(code)
    os.close(wfd)
    deadline = time.monotonic() + float(op["timeout"]) + float(op.get("delay", 0)) + 5
    raw = b""
    try:
        while time.monotonic() < deadline:
            ready = select.select([rfd], [], [], max(0.0, deadline - time.monotonic()))[0]
            if not ready:
                break
            chunk = os.read(rfd, 65536)
            if not chunk:
                break
            raw += chunk
    finally:
        os.close(rfd)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)
        os.waitpid(pid, 0)
    if not raw:
        return {"ok": False, "kind": "harness", "detail": f"the uid {uid} child said nothing"}
    result: dict[str, Any] = json.loads(raw)
    result["uid"] = uid
    return result


def _owner(uid: int) -> str:
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (KeyError, ImportError):
        return str(uid)


def _group(gid: int) -> tuple[str, list[str]]:
    """A group's name and the users in it (members, and users whose primary group it is)."""
    try:
        import grp
        import pwd

        entry = grp.getgrgid(gid)
        users = set(entry.gr_mem) | {p.pw_name for p in pwd.getpwall() if p.pw_gid == gid}
        return entry.gr_name, sorted(users)
    except (KeyError, ImportError):
        return str(gid), []


def _stat(path: str) -> dict[str, Any]:
    out: dict[str, Any] = {"ok": True}
    for key, where in (("socket", path), ("dir", os.path.dirname(path) or ".")):
        try:
            st = os.lstat(where)
        except OSError as exc:
            out[key] = {"error": f"{type(exc).__name__}: {exc.strerror}"}
            continue
        out[key] = {"path": where, "mode": stat.S_IMODE(st.st_mode),
                    "filemode": stat.filemode(st.st_mode), "uid": st.st_uid,
                    "gid": st.st_gid, "owner": _owner(st.st_uid),
                    "is_socket": stat.S_ISSOCK(st.st_mode), "is_dir": stat.S_ISDIR(st.st_mode)}
        out[key]["group"], out[key]["group_users"] = _group(st.st_gid)
    return out


def run_op(path: str, op: dict[str, Any]) -> dict[str, Any]:
    """One op of a plan (see the module docstring)."""
    if op.get("op") == "stat":
        return _stat(path)
    if op.get("uid") is not None:
        return _as_uid(path, op)
    return _exchange(path, op)


def run_plan(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """Every op of ``plan``, one after another or all at once (``parallel``)."""
    path = str(plan["socket"])
    ops: list[dict[str, Any]] = list(plan["ops"])
    if not plan.get("parallel"):
        return [run_op(path, op) for op in ops]
    results: list[dict[str, Any]] = [{} for _ in ops]

    def one(i: int) -> None:
        try:
            results[i] = run_op(path, ops[i])
        except Exception as exc:  # a harness error, reported in place
            results[i] = {"ok": False, "kind": "harness", "detail": repr(exc)}

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(len(ops))]
    for t in threads:
        t.start()
    limit = time.monotonic() + max(
        (float(op.get("timeout", 5)) + float(op.get("delay", 0)) for op in ops), default=5) + 10
    for t in threads:
        t.join(max(0.0, limit - time.monotonic()))
    return [r or {"ok": False, "kind": "harness", "detail": "the op did not finish"}
            for r in results]


def main() -> int:
    try:
        plan = json.loads(sys.stdin.buffer.read(16 * 1024 * 1024))
        results = run_plan(plan)
    except (ValueError, KeyError, TypeError) as exc:
        print(f"nslcd-probe: bad plan: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
