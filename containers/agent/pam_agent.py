#!/usr/bin/env python3
"""Batch agent: runs ``pamdrive`` once per attempt and reports each as one JSON line.

Python standard library only; it runs inside the lab container (or on the host for
the self-tests).  Every attempt is its own ``pamdrive`` process, so a module that
crashes, calls ``exit()`` or hangs shows as such and cannot take other attempts down.

Usage::

    pam_agent.py [--pamdrive PATH] [--jobs N] [--valgrind PATH]

``--pamdrive`` defaults to $PAMDRIVE, else ``pamdrive`` beside this script, else on
PATH; ``--jobs`` (attempts run at once) to the CPU count.

Requests, one JSON object per stdin line::

    {"id": ANY, "argv": [PAMDRIVE ARGS...], "timeout": 5, "valgrind": false,
     "asan": false, "env": {"NAME": "VALUE"}, "busy_limit": 10}

``timeout`` defaults to 5 s (60 s under valgrind); ``env`` is added to the agent's
environment.  ``busy_limit`` (at least ``timeout``): an attempt still running at
``timeout`` that is using the CPU (valgrind slowed by a loaded machine, not a module
blocked on a socket) is given until ``busy_limit``; it then says ``"busy_at_timeout":
true``.  A process that waits (no CPU in the last half second) is hung at ``timeout``.
Results, one JSON line per attempt, flushed as each attempt ends (in completion order;
match them by ``id``)::

    {"id": ANY, "status": "ran" | "crashed" | "exited" | "hung" | "error",
     "signal": N | null, "exit_code": N | null, "result": PAMDRIVE_JSON | null,
     "wall_ms": X, "stderr": "...last 2000 characters...",
     "valgrind": {...}            # only when asked
     "asan": {...}                # only when asked
     "error": "..."}              # only with status "error"

- ran: pamdrive printed its report and returned (exit 0, or 99 = valgrind errors).
- crashed: pamdrive died of a signal (``signal``); ``result`` if it had printed one.
- exited: a module ended the process: pamdrive's atexit report says
  ``"exit_called": true`` (``result`` holds it, with ``in_step``), or the process
  ended without a report and without a signal (e.g. ``_exit()``).
- hung: still running at ``timeout`` (or ``busy_limit``); its process group was killed
  (signal 9).
- error: the harness side failed: bad request, pamdrive missing, or a pamdrive
  usage error (exit 2 with "pamdrive: usage error" on stderr).

Under valgrind (``"valgrind": true``) pamdrive runs as ``valgrind --xml=yes
--xml-file=F --leak-check=full --errors-for-leak-kinds=definite --keep-debuginfo=yes
--error-exitcode=99`` and ``valgrind`` is::

    {"errors": N,                      # non-leak errors (with repeats) + definitely
                                       # lost leak records; null when the XML is
                                       # unreadable (e.g. cut off by a kill): the
                                       # complete errors already written are still
                                       # listed ("salvaged_errors": how many)
     "invalid": ["InvalidRead: Invalid read of size 4 at f (x.c:7), by g (x.c:9)", ...],
     "uninitialised": ["UninitCondition: ... at f (x.c:3)", ...],
     "other": ["SyscallParam: Syscall param read(buf) points to unaddressable
                byte(s) at read (libc.so.6), by f (x.c:40)", ...],
                                       # every other non-leak kind, known or not
     "leaks": "definitely lost: 33 bytes in 1 blocks; indirectly lost: 0 bytes in
               0 blocks; possibly lost: 0 bytes in 0 blocks",
     "definitely_lost_bytes": 33,
     "excerpt": "first errors, with their top frames"}

Each non-leak error appears in exactly one of ``invalid``, ``uninitialised`` and
``other``, with its first frames (``FRAMES_IN_LINE``).

With ``"asan": true`` the attempt also runs with ``ASAN_OPTIONS`` logging to a
private directory (for a module built with ``-fsanitize=address``; the request's
``env`` gives ``LD_PRELOAD`` of libasan when pamdrive itself is not instrumented),
and the result holds::

    "asan": {"reports": N,             # AddressSanitizer reports written
             "findings": ["heap-buffer-overflow: WRITE of size 1 at f (x.c:7),
                           by g (x.c:9)", ...],
             "excerpt": "the reports, cut"}
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from typing import Any

DEFAULT_TIMEOUT_S = 5.0
DEFAULT_VALGRIND_TIMEOUT_S = 60.0
MAX_TIMEOUT_S = 600.0
#: How long a process is watched for CPU use when its timeout is reached, and how much
#: more time a busy one is given before it is looked at again (up to its busy_limit).
BUSY_WINDOW_S = 0.5
BUSY_STEP_S = 2.0
#: How much a valgrind run yields the CPU to what runs beside it (logins, servers; it
#: still gets any CPU they leave): its nice value, and its session's autogroup nice
#: (each run is a session of its own, and with autogroups a plain nice only ranks
#: processes of one session).
VALGRIND_NICE = 10
STDERR_TAIL = 2000
EXCERPT_MAX = 3000
VALGRIND_ERROR_EXIT = 99
USAGE_EXIT = 2
USAGE_MARK = b"pamdrive: usage error"
#: Frames shown per valgrind error.
FRAMES = 4
#: Frames named in an error's one-line form.
FRAMES_IN_LINE = 3
#: What the agent adds to ASAN_OPTIONS: errors only (valgrind reports leaks), symbolised
#: with addr2line (binutils) when llvm-symbolizer is absent.
ASAN_OPTIONS = "detect_leaks=0:allow_addr2line=1:symbolize=1:print_summary=1"

_out_lock = threading.Lock()
#: Process groups of the pamdrive runs going on (each in a session of its own): killed
#: when the agent is told to stop, so none outlives it.
_children: set[int] = set()
_children_lock = threading.Lock()


def _stop_children(signum: int, _frame: Any) -> None:
    """SIGTERM or SIGINT: kill every pamdrive run going on, then end at once."""
    with _children_lock:
        groups = list(_children)
    for pgid in groups:
        with contextlib.suppress(OSError):
            os.killpg(pgid, signal.SIGKILL)
    os._exit(128 + signum)


def emit(obj: dict[str, Any]) -> None:
    line = json.dumps(obj) + "\n"
    with _out_lock:
        sys.stdout.write(line)
        sys.stdout.flush()


# --------------------------------------------------------------------------- valgrind


def _frame_text(frame: ET.Element) -> str:
    fn = frame.findtext("fn") or "???"
    file, line = frame.findtext("file"), frame.findtext("line")
    if file:
        return f"{fn} ({file}:{line})"
    obj = frame.findtext("obj")
    return f"{fn} ({os.path.basename(obj)})" if obj else fn


#: Objects whose frames are not where a module went wrong: libc, the dynamic linker,
#: valgrind's own replacements (strlen, malloc ...).
_SYSTEM_OBJ = re.compile(r"(?:libc\.so|ld-linux|vgpreload_)")


def _is_system(frame: ET.Element) -> bool:
    return bool(_SYSTEM_OBJ.match(os.path.basename(frame.findtext("obj") or "")))


def _error_text(error: ET.Element) -> tuple[str, str, list[str], list[bool]]:
    """An error's kind, text, and the frames of its own stack (the first ``<stack>``:
    those after an ``<auxwhat>``, where a block was allocated or freed, are not where
    the error happened), each with whether it is in libc, ld.so or valgrind's code."""
    kind = error.findtext("kind") or "?"
    what = error.findtext("what") or error.findtext("xwhat/text") or ""
    stack = error.find("stack")
    frames = stack.findall("frame") if stack is not None else []
    return kind, what, [_frame_text(f) for f in frames], [_is_system(f) for f in frames]


def parse_valgrind_xml(data: bytes) -> dict[str, Any]:
    """Summarise a memcheck XML report (see the module docstring)."""
    summary: dict[str, Any] = {"errors": 0, "invalid": [], "uninitialised": [],
                               "leaks": "", "excerpt": ""}
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        return _cut_off_summary(data, exc)
    counts: dict[str, int] = {}
    for pair in root.findall("errorcounts/pair"):
        unique, count = pair.findtext("unique"), pair.findtext("count")
        if unique and count and count.isdigit():
            counts[unique] = int(count)
    return _summarise(summary, root.findall("error"), counts)


_WHOLE_ERROR = re.compile(rb"<error>.*?</error>", re.DOTALL)


def _cut_off_summary(data: bytes, exc: ET.ParseError) -> dict[str, Any]:
    """An unreadable report (valgrind killed mid-write): ``errors`` is None, and the
    complete ``<error>`` elements already written are summarised as evidence."""
    errors: list[ET.Element] = []
    for m in _WHOLE_ERROR.finditer(data):
        with contextlib.suppress(ET.ParseError):
            errors.append(ET.fromstring(m.group()))
    summary: dict[str, Any] = {"invalid": [], "uninitialised": [], "leaks": ""}
    summary = _summarise(summary, errors, {})
    summary["errors"] = None
    summary["salvaged_errors"] = len(errors)
    summary["excerpt"] = (f"unreadable valgrind XML ({exc}): {data[-EXCERPT_MAX:]!r}\n"
                          + summary["excerpt"])[:EXCERPT_MAX]
    return summary


def _summarise(summary: dict[str, Any], errors: list[ET.Element],
               counts: dict[str, int]) -> dict[str, Any]:
    """Fill ``summary`` from valgrind's ``<error>`` elements (``counts``: repeats)."""
    leaked = {kind: [0, 0] for kind in ("DefinitelyLost", "IndirectlyLost", "PossiblyLost")}
    excerpt: list[str] = []
    count = 0
    summary["other"] = []
    for error in errors:
        kind, what, frames, system = _error_text(error)
        # The first frame of a leak is the allocator: start at its caller.
        if kind.startswith("Leak_") and len(frames) > 1:
            frames, system = frames[1:], system[1:]
        line = f"{kind}: {what}{_where(frames, system)}"
        if kind.startswith("Leak_"):
            name = kind[len("Leak_"):]
            if name in leaked:
                leaked[name][0] += int(error.findtext("xwhat/leakedbytes") or 0)
                leaked[name][1] += int(error.findtext("xwhat/leakedblocks") or 0)
            if name == "DefinitelyLost":
                count += 1
            else:
                continue
        else:
            count += counts.get(error.findtext("unique") or "", 1)
            if kind.startswith(("Invalid", "Mismatched", "Overlap")):
                summary["invalid"].append(line)
            elif kind.startswith("Uninit") or "uninitialised" in what:
                summary["uninitialised"].append(line)
            else:  # SyscallParam, ClientCheck, a kind this agent does not know...
                summary["other"].append(line)
        shown = _shown(frames, system, FRAMES)
        excerpt.append(f"{kind}: {what}" + (f" at {shown[0]}" if shown else "")
                       + "".join(f"\n    by {f}" for f in shown[1:]))
    summary["errors"] = count
    summary["leaks"] = "; ".join(
        f"{label}: {leaked[key][0]} bytes in {leaked[key][1]} blocks"
        for key, label in (("DefinitelyLost", "definitely lost"),
                           ("IndirectlyLost", "indirectly lost"),
                           ("PossiblyLost", "possibly lost")))
    summary["definitely_lost_bytes"] = leaked["DefinitelyLost"][0]
    summary["excerpt"] = "\n".join(excerpt)[:EXCERPT_MAX]
    return summary


def _shown(frames: list[str], system: list[bool], count: int) -> list[str]:
    """An error's first ``count`` frames; when all of them are in libc, ld.so or
    valgrind's own code (an error deep in libc), the first frame that is not follows
    after ``...``: where the call came from (the module, or pamdrive)."""
    shown = frames[:count]
    if shown and all(system[:count]):
        rest = zip(frames[count:], system[count:], strict=True)
        later = next((f for f, in_system in rest if not in_system), None)
        if later is not None:
            shown.append(f"... {later}")
    return shown


def _where(frames: list[str], system: list[bool] | None = None) -> str:
    """`` at f (x.c:7), by g (x.c:9)``: an error's first frames, for its one-line form
    (``system``: which are in libc, ld.so or valgrind's code; None: none of them)."""
    if not frames:
        return ""
    return " at " + ", by ".join(_shown(frames, system or [False] * len(frames),
                                        FRAMES_IN_LINE))


# --------------------------------------------------------------------------- ASan

_ASAN_ERROR = re.compile(r"ERROR: AddressSanitizer: (.*)")
_ASAN_ACCESS = re.compile(r"^((?:READ|WRITE) of size \d+)")
_ASAN_FRAME = re.compile(r"^#\d+ 0x[0-9a-f]+\s+(?:in (\S+) (\S+)|\((\S+?)\+0x[0-9a-f]+\))")


def _asan_frame(match: re.Match[str]) -> str:
    fn, where, obj = match.group(1), match.group(2), match.group(3)
    if fn:
        return f"{fn} ({os.path.basename(where)})"
    return f"?? ({os.path.basename(obj or '')})"


def _asan_report(head: str, lines: list[str]) -> str:
    """One report's line: its kind, the access, the first frames of its first stack."""
    kind = re.split(r" on (?:address|unknown|0x)| in thread|: | \(", head, maxsplit=1)[0]
    access, frames = "", []
    for raw in lines:
        line = raw.strip()
        frame = _ASAN_FRAME.match(line)
        if frame:
            frames.append(_asan_frame(frame))
            if len(frames) == FRAMES_IN_LINE:
                break
        elif frames:  # the first stack ended
            break
        elif _ASAN_ACCESS.match(line):
            access = _ASAN_ACCESS.match(line).group(1)  # type: ignore[union-attr]
    return f"{kind.strip()}: {access or 'report'}{_where(frames)}"


def parse_asan_logs(texts: list[str]) -> dict[str, Any]:
    """Summarise AddressSanitizer reports (see the module docstring)."""
    findings: list[str] = []
    for text in texts:
        lines = text.splitlines()
        for i, line in enumerate(lines):
            error = _ASAN_ERROR.search(line)
            if error:
                findings.append(_asan_report(error.group(1), lines[i + 1:]))
    return {"reports": len(findings), "findings": findings,
            "excerpt": "\n".join(texts)[:EXCERPT_MAX]}


# --------------------------------------------------------------------------- attempts


class Agent:
    def __init__(self, pamdrive: str, valgrind: str | None) -> None:
        self.pamdrive = pamdrive
        self.valgrind = valgrind

    def attempt(self, request: dict[str, Any]) -> dict[str, Any]:
        """Run one request; never raises."""
        rid = request.get("id") if isinstance(request, dict) else None
        try:
            return {"id": rid, **self._attempt(request)}
        except Exception as exc:  # report, never lose an attempt
            return {"id": rid, "status": "error", "signal": None, "exit_code": None,
                    "result": None, "wall_ms": 0.0, "stderr": "", "error": repr(exc)}

    def _attempt(self, request: dict[str, Any]) -> dict[str, Any]:
        problem = _request_problem(request)
        if problem:
            return _error(problem)
        use_valgrind = bool(request.get("valgrind", False))
        default = DEFAULT_VALGRIND_TIMEOUT_S if use_valgrind else DEFAULT_TIMEOUT_S
        timeout = float(request.get("timeout") or default)
        env = dict(os.environ)
        env.update(request.get("env") or {})
        argv = [self.pamdrive, *request["argv"]]
        xml_path = None
        if use_valgrind:
            if self.valgrind is None:
                return _error("valgrind requested but not installed")
            fd, xml_path = tempfile.mkstemp(prefix="pam-agent-", suffix=".xml")
            os.close(fd)
            argv = [self.valgrind, "-q", "--xml=yes", f"--xml-file={xml_path}",
                    "--leak-check=full", "--errors-for-leak-kinds=definite",
                    "--show-leak-kinds=definite,indirect,possible", "--keep-debuginfo=yes",
                    f"--error-exitcode={VALGRIND_ERROR_EXIT}", "--trace-children=no",
                    *argv]
        asan_dir = None
        if request.get("asan"):
            asan_dir = tempfile.mkdtemp(prefix="pam-agent-asan-")
            extra = env.get("ASAN_OPTIONS", "")
            env["ASAN_OPTIONS"] = ":".join(
                o for o in (ASAN_OPTIONS, extra, f"log_path={asan_dir}/asan") if o)
        busy_limit = max(timeout, float(request.get("busy_limit") or timeout))
        try:
            report = self._run(argv, env, timeout, busy_limit, yield_cpu=use_valgrind)
            if xml_path is not None:
                with open(xml_path, "rb") as f:
                    report["valgrind"] = parse_valgrind_xml(f.read())
            if asan_dir is not None:
                report["asan"] = parse_asan_logs(_read_all(asan_dir))
        finally:
            if xml_path is not None:
                with contextlib.suppress(OSError):
                    os.unlink(xml_path)
            if asan_dir is not None:
                shutil.rmtree(asan_dir, ignore_errors=True)
        return report

    def _run(self, argv: list[str], env: dict[str, str], timeout: float,
             busy_limit: float | None = None, yield_cpu: bool = False) -> dict[str, Any]:
        start = time.monotonic()
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, env=env, start_new_session=True)
        except OSError as exc:
            return _error(f"cannot run {argv[0]}: {exc}")
        with _children_lock:
            _children.add(proc.pid)
        try:
            return self._wait(proc, start, timeout, busy_limit, yield_cpu)
        finally:
            with _children_lock:
                _children.discard(proc.pid)

    def _wait(self, proc: subprocess.Popen[bytes], start: float, timeout: float,
              busy_limit: float | None, yield_cpu: bool) -> dict[str, Any]:
        if yield_cpu:
            _yield_cpu(proc.pid)
        hung = busy = False
        limit = start + max(timeout, busy_limit or timeout)
        wait = timeout
        while True:
            try:
                out, err = proc.communicate(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                left = limit - time.monotonic()
                if left > 0 and _using_cpu(proc.pid):
                    busy, wait = True, min(left, BUSY_STEP_S)
                    continue
                hung = True
                break
        if hung:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            try:
                out, err = proc.communicate(timeout=5)
            except subprocess.TimeoutExpired:  # a grandchild holds the pipes open
                proc.kill()
                out, err = b"", b""
                proc.wait(5)
        wall_ms = round((time.monotonic() - start) * 1000, 3)
        code = proc.returncode
        sig = -code if code is not None and code < 0 else None
        result = _last_json(out)
        report: dict[str, Any] = {
            "status": "ran",
            "signal": sig,
            "exit_code": None if sig is not None else code,
            "result": result,
            "wall_ms": wall_ms,
            "stderr": err[-STDERR_TAIL:].decode("utf-8", "replace"),
        }
        if busy:
            report["busy_at_timeout"] = True
        if hung:
            report["status"] = "hung"
        elif sig is not None:
            report["status"] = "crashed"
        elif result is not None and result.get("exit_called"):
            report["status"] = "exited"
        elif result is None:
            if code == USAGE_EXIT and USAGE_MARK in err:
                report["status"] = "error"
                report["error"] = "pamdrive usage error"
            else:
                report["status"] = "exited"
        return report


def _yield_cpu(pid: int) -> None:
    """Lower ``pid``'s priority (:data:`VALGRIND_NICE`); best effort, never an error."""
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, pid, VALGRIND_NICE)
    with contextlib.suppress(OSError), open(f"/proc/{pid}/autogroup", "w") as f:
        f.write(str(VALGRIND_NICE))


def _using_cpu(pid: int, window: float = BUSY_WINDOW_S) -> bool:
    """Whether ``pid`` used the CPU over ``window`` seconds: a slow process, not one that
    waits (a module blocked on a socket uses none)."""
    before = _cpu_ticks(pid)
    time.sleep(window)
    after = _cpu_ticks(pid)
    return before is not None and after is not None and after > before


def _cpu_ticks(pid: int) -> int | None:
    """User + system CPU ticks of ``pid`` (``/proc/PID/stat``), None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rindex(b")") + 2:].split()  # after "pid (comm) "
    return int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15


def _read_all(directory: str) -> list[str]:
    texts = []
    for name in sorted(os.listdir(directory)):
        with open(os.path.join(directory, name), "rb") as f:
            texts.append(f.read().decode("utf-8", "replace"))
    return texts


def _error(message: str) -> dict[str, Any]:
    return {"status": "error", "signal": None, "exit_code": None, "result": None,
            "wall_ms": 0.0, "stderr": "", "error": message}


def _request_problem(request: Any) -> str | None:
    if not isinstance(request, dict):
        return "request is not a JSON object"
    argv = request.get("argv")
    if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
        return "argv must be a list of strings"
    if any("\0" in a for a in argv):
        return "argv contains a NUL"
    env = request.get("env") or {}
    if not isinstance(env, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and k and "=" not in k
            for k, v in env.items()):
        return "env must map names to strings"
    timeout = request.get("timeout")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float)
                                or not 0 < timeout <= MAX_TIMEOUT_S):
        return f"timeout must be a number in (0, {MAX_TIMEOUT_S:.0f}]"
    busy_limit = request.get("busy_limit")
    if busy_limit is not None and (isinstance(busy_limit, bool)
                                   or not isinstance(busy_limit, int | float)
                                   or not 0 < busy_limit <= 2 * MAX_TIMEOUT_S):
        return f"busy_limit must be a number in (0, {2 * MAX_TIMEOUT_S:.0f}]"
    return None


def _last_json(out: bytes) -> dict[str, Any] | None:
    """pamdrive's report: the last stdout line that is a JSON object."""
    for line in reversed(out.splitlines()):
        line = line.strip()
        if line.startswith(b"{"):
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict):
                return obj
    return None


# --------------------------------------------------------------------------- main


def find_pamdrive(explicit: str | None) -> str | None:
    if explicit:
        return explicit
    if os.environ.get("PAMDRIVE"):
        return os.environ["PAMDRIVE"]
    beside = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pamdrive")
    if os.access(beside, os.X_OK):
        return beside
    return shutil.which("pamdrive")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run pamdrive attempts read as JSON lines.")
    parser.add_argument("--pamdrive", help="pamdrive binary (default: beside this script)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="attempts run at once (default: CPU count)")
    parser.add_argument("--valgrind", default=shutil.which("valgrind"),
                        help="valgrind binary (default: from PATH)")
    opts = parser.parse_args(argv)
    pamdrive = find_pamdrive(opts.pamdrive)
    if pamdrive is None:
        print("pam_agent: pamdrive not found (use --pamdrive)", file=sys.stderr)
        return 2
    agent = Agent(os.path.abspath(pamdrive), opts.valgrind)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _stop_children)

    def run(request: Any) -> None:
        emit(agent.attempt(request))

    with ThreadPoolExecutor(max_workers=max(1, opts.jobs)) as pool:
        for raw in sys.stdin.buffer:
            if not raw.strip():
                continue
            try:
                request = json.loads(raw)
            except ValueError as exc:
                emit({"id": None, **_error(f"bad JSON request: {exc}")})
                continue
            pool.submit(run, request)
    return 0


if __name__ == "__main__":
    sys.exit(main())
