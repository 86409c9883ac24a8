"""The memory verdict (pamconform.drivers.memcheck) and the agent's valgrind/ASan summaries.

The first tests feed hand-written valgrind XML and ASan logs through the agent's parsers
and the verdict; the last ones build the faulty-module gallery's memory defects on the
host and run them through pamdrive and the agent under valgrind and ASan (no Docker):
every defect must fail the verdict, the correct build must pass it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from agent_module import load_agent

from pamconform.core import resources
from pamconform.core.context import CaseContext
from pamconform.core.outcome import Fail
from pamconform.drivers.agent import local_agent_argv, local_exec, run_batch
from pamconform.drivers.direct import Attempt
from pamconform.drivers.memcheck import (
    AsanModule,
    MemcheckRun,
    attempt_problems,
    judge_memcheck,
    repeated,
)
from pamconform.lab.scenario_control import ScenarioProcess

FAULTY = Path(__file__).resolve().parent / "fixtures" / "faulty_modules"


AGENT = load_agent()


def _error(kind: str, what: str, *frames: str, unique: str = "0x1") -> str:
    stack = "".join(f"<frame><fn>{f}</fn><file>m.c</file><line>{i + 1}</line></frame>"
                    for i, f in enumerate(frames))
    return (f"<error><unique>{unique}</unique><kind>{kind}</kind><what>{what}</what>"
            f"<stack>{stack}</stack></error>")


def _xml(*errors: str) -> bytes:
    return f"<valgrindoutput>{''.join(errors)}</valgrindoutput>".encode()


SYSCALL_PARAM = _error("SyscallParam", "Syscall param read(buf) points to unaddressable "
                       "byte(s)", "read", "exchange", "pam_sm_authenticate", "_pam_dispatch")


@pytest.mark.parametrize("kind", ["SyscallParam", "InvalidFree", "MismatchedFree", "Overlap",
                                  "ClientCheck", "UninitValue", "FishyValue",
                                  "SomeKindNotYetInvented"])
def test_every_non_leak_kind_fails(kind: str) -> None:
    vg = AGENT.parse_valgrind_xml(_xml(_error(kind, "something bad", "f", "g", "h", "i")))
    assert vg["errors"] == 1
    problems = attempt_problems(Attempt({"status": "ran", "valgrind": vg}))
    assert len(problems) == 1
    # the kind and the first three frames are in the line
    assert problems[0].startswith(f"valgrind {kind}: something bad at f (m.c:1)")
    assert "by g (m.c:2), by h (m.c:3)" in problems[0] and "i (m.c" not in problems[0]


def test_the_issue_s_syscall_param_error_fails() -> None:
    """The build of the issue: only a SyscallParam error, which the old verdict ignored
    (it read the invalid and uninitialised lists only)."""
    vg = AGENT.parse_valgrind_xml(_xml(SYSCALL_PARAM))
    assert vg["invalid"] == [] and vg["uninitialised"] == []
    assert "read (m.c:1), by exchange (m.c:2)" in vg["other"][0]
    problems = attempt_problems(Attempt({"status": "ran", "valgrind": vg}))
    assert problems and "SyscallParam" in problems[0]


def _frame(fn: str, obj: str, file: str = "", line: int = 0) -> str:
    where = f"<file>{file}</file><line>{line}</line>" if file else ""
    return f"<frame><fn>{fn}</fn><obj>/usr/lib/{obj}</obj>{where}</frame>"


#: An error deep in libc, as the lab reports it: valgrind's strlen (with a line where
#: valgrind has its own debug information), libc's frames with names and no line.
DEEP = [_frame("strlen", "valgrind/vgpreload_memcheck-amd64-linux.so", "vg_replace_strmem.c",
               505),
        _frame("__vfprintf_internal", "x86_64-linux-gnu/libc.so.6"),
        _frame("__vsnprintf_internal", "x86_64-linux-gnu/libc.so.6"),
        _frame("snprintf", "x86_64-linux-gnu/libc.so.6")]


def _deep_error(caller: str, aux: str = "") -> bytes:
    return _xml(f"<error><unique>0x3</unique><kind>InvalidRead</kind><what>Invalid read of "
                f"size 1</what><stack>{''.join(DEEP)}{caller}</stack>{aux}</error>")


def test_an_error_deep_in_libc_still_names_where_the_call_came_from() -> None:
    """When the first frames are all libc's and valgrind's, the first frame that is not
    follows them: the module's line, or its object when it has no debug information."""
    vg = AGENT.parse_valgrind_xml(_deep_error(
        _frame("build_request", "security/pam_x.so", "pam_x.c", 42)))
    line = attempt_problems(Attempt({"status": "ran", "valgrind": vg}))[0]
    assert line.endswith("at strlen (vg_replace_strmem.c:505), by __vfprintf_internal "
                         "(libc.so.6), by __vsnprintf_internal (libc.so.6), by ... "
                         "build_request (pam_x.c:42)")
    assert vg["excerpt"].endswith("by snprintf (libc.so.6)\n    by ... build_request "
                                  "(pam_x.c:42)")
    packaged = AGENT.parse_valgrind_xml(_deep_error(
        _frame("pam_sm_authenticate", "security/pam_ldap.so")))
    assert packaged["invalid"][0].endswith("by ... pam_sm_authenticate (pam_ldap.so)")
    # with a frame of the module's among the first ones, nothing is added
    assert "..." not in AGENT.parse_valgrind_xml(_xml(SYSCALL_PARAM))["other"][0]


def test_the_added_frame_is_from_the_error_s_own_stack() -> None:
    """A second stack (where the block was allocated) is not where the error happened."""
    aux = ("<auxwhat>Address 0x4a3a044 is 0 bytes after a block of size 4 alloc'd</auxwhat>"
           f"<stack>{_frame('malloc', 'valgrind/vgpreload_memcheck-amd64-linux.so')}"
           f"{_frame('alloc_it', 'security/pam_x.so', 'pam_x.c', 9)}</stack>")
    vg = AGENT.parse_valgrind_xml(_deep_error("", aux))
    assert "alloc_it" not in vg["invalid"][0] and "..." not in vg["invalid"][0]
    assert "alloc_it" not in vg["excerpt"]


def test_leaks_alone_are_not_errors() -> None:
    leak = ("<error><unique>0x2</unique><kind>Leak_DefinitelyLost</kind><xwhat><text>16 "
            "bytes in 1 blocks are definitely lost</text><leakedbytes>16</leakedbytes>"
            "<leakedblocks>1</leakedblocks></xwhat><stack><frame><fn>malloc</fn></frame>"
            "<frame><fn>f</fn></frame></stack></error>")
    vg = AGENT.parse_valgrind_xml(_xml(leak))
    assert vg["definitely_lost_bytes"] == 16
    assert attempt_problems(Attempt({"status": "ran", "valgrind": vg})) == []


def test_unreadable_valgrind_xml_is_a_harness_error() -> None:
    vg = AGENT.parse_valgrind_xml(b"<valgrindoutput><error>")
    with pytest.raises(RuntimeError, match="unreadable"):
        attempt_problems(Attempt({"status": "ran", "valgrind": vg}))


ASAN_LOG = """=================================================================
==41==ERROR: AddressSanitizer: heap-buffer-overflow on address 0x6020 at pc 0x7f bp 0x7f sp 0x7f
WRITE of size 1 at 0x602000000014 thread T0
    #0 0x7f2a in exchange /opt/target-src/pam_faulty.c:257
    #1 0x7f2b in pam_sm_authenticate /opt/target-src/pam_faulty.c:352
    #2 0x7f2c  (/lib/x86_64-linux-gnu/libpam.so.0+0x3b1c)
    #3 0x7f2d in main /x/pamdrive.c:600

0x602000000014 is located 0 bytes to the right of 4-byte region
allocated by thread T0 here:
    #0 0x7f3a in __interceptor_malloc
SUMMARY: AddressSanitizer: heap-buffer-overflow /opt/target-src/pam_faulty.c:257 in exchange
"""
ASAN_DOUBLE_FREE = """==7==ERROR: AddressSanitizer: attempting double-free on 0x6030 in thread T0:
    #0 0x7f1 in __interceptor_free ../../../../src/libsanitizer/asan/asan_malloc_linux.cpp:52
    #1 0x7f2 in pam_sm_authenticate /opt/target-src/pam_faulty.c:371
"""


def test_asan_reports_are_summarised_with_their_first_frames() -> None:
    asan = AGENT.parse_asan_logs([ASAN_LOG, ASAN_DOUBLE_FREE])
    assert asan["reports"] == 2
    assert asan["findings"][0] == ("heap-buffer-overflow: WRITE of size 1 at exchange "
                                   "(pam_faulty.c:257), by pam_sm_authenticate "
                                   "(pam_faulty.c:352), by ?? (libpam.so.0)")
    assert asan["findings"][1].startswith("attempting double-free: report at "
                                          "__interceptor_free (asan_malloc_linux.cpp:52)")
    # ASan ends the process after a report: the report is the finding, not an "exit"
    problems = attempt_problems(Attempt({"status": "exited", "exit_code": 1, "asan": asan}))
    assert problems == [f"ASan {f}" for f in asan["findings"]]
    assert attempt_problems(Attempt({"status": "ran", "asan": AGENT.parse_asan_logs([])})) == []


@pytest.mark.parametrize(("raw", "words"), [
    ({"status": "exited", "exit_code": 1}, "ended the process (exit code 1"),
    ({"status": "crashed", "signal": 6}, "signal 6"),
    ({"status": "hung", "wall_ms": 60000}, "hung"),
])
def test_a_process_that_does_not_survive_fails(raw: dict[str, Any], words: str) -> None:
    vg = AGENT.parse_valgrind_xml(_xml())
    (problem,) = attempt_problems(Attempt({**raw, "valgrind": vg}))
    assert words in problem


#: valgrind killed mid-report: one complete error, then a cut-off one, no closing tags
CUT_OFF = (b"<?xml version=\"1.0\"?><valgrindoutput><pid>7</pid>" + SYSCALL_PARAM.encode()
           + b"<error><unique>0x2</unique><kind>InvalidRead</kind><wha")


def test_a_hung_module_s_cut_off_report_is_a_fail_with_its_errors() -> None:
    """The agent kills a hung valgrind, its XML stops mid-element: the hang is the verdict
    (not a harness error), and the error written completely before it is evidence."""
    vg = AGENT.parse_valgrind_xml(CUT_OFF)
    assert vg["errors"] is None and vg["salvaged_errors"] == 1
    problems = attempt_problems(Attempt({"status": "hung", "wall_ms": 60000, "valgrind": vg}))
    assert problems[0].startswith("valgrind SyscallParam: Syscall param read(buf)")
    assert "hung" in problems[1] and len(problems) == 2
    # the same cut-off report from a process that ran to its end is the harness's fault
    with pytest.raises(RuntimeError, match="unreadable"):
        attempt_problems(Attempt({"status": "ran", "valgrind": vg}))


def test_judge_memcheck_fails_a_hang_with_a_cut_off_report() -> None:
    vg = AGENT.parse_valgrind_xml(b"<valgrindoutput><pid>7</pid><err")
    ctx = CaseContext(target=None)
    with pytest.raises(Fail, match="hung"):
        judge_memcheck(ctx, MemcheckRun(
            request={"argv": [], "timeout": 6.0},
            run=lambda reqs: [Attempt({"status": "hung", "wall_ms": 6000, "valgrind": vg})],
            record=lambda label, a: None, asan=AsanModule(None, "not built"), what="a login"))
    assert ctx.extra["memory"]["valgrind"] == []
    assert "cut off" in ctx.extra["memory"]["valgrind_report"]


def test_repeated_request_authenticates_n_times_in_one_process() -> None:
    req = {"argv": ["--service", "s", "--user", "u", "--password", "p", "--steps",
                    "authenticate"], "timeout": 6.0, "valgrind": True}
    out = repeated(req, 3)
    assert out["argv"] == ["--service", "s", "--user", "u", "--password", "p", "--password",
                           "p", "--password", "p", "--steps",
                           "authenticate,authenticate,authenticate", "--keep-going"]
    assert out["timeout"] == 18.0 and req["argv"][-1] == "authenticate"


def _leaky(bytes_once: int, bytes_repeated: int) -> tuple[CaseContext, MemcheckRun]:
    def run(reqs: list[dict[str, Any]]) -> list[Attempt]:
        many = "--keep-going" in reqs[0]["argv"]
        lost = bytes_repeated if many else bytes_once
        vg = {"errors": 1, "invalid": [], "uninitialised": [], "other": [],
              "definitely_lost_bytes": lost, "leaks": f"definitely lost: {lost} bytes"}
        return [Attempt({"status": "ran", "valgrind": vg})]

    ctx = CaseContext(target=None)
    return ctx, MemcheckRun(request={"argv": ["--service", "s", "--password", "p"],
                                     "timeout": 6.0},
                            run=run, record=lambda label, a: None,
                            asan=AsanModule(None, "not built"), what="a login")


def test_a_leak_that_grows_with_attempts_fails() -> None:
    ctx, m = _leaky(16, 48)
    with pytest.raises(Fail, match="16 bytes after 1 attempt, 48 bytes after 3"):
        judge_memcheck(ctx, m)


def test_a_leak_that_does_not_grow_is_informational() -> None:
    ctx, m = _leaky(16, 16)
    judge_memcheck(ctx, m)
    assert ctx.informational_reasons and "the same after 3" in ctx.informational_reasons[0]
    assert ctx.extra["memory"]["asan"] == "not run: not built"


# ---------------------------------------------------------------- the gallery, on the host

def _skip_reason() -> str | None:
    for tool in ("cc", "make", "valgrind"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not on PATH"
    if not Path("/usr/include/security/pam_modules.h").exists():
        return "PAM headers missing: install libpam0g-dev"
    return None


def _libasan() -> str | None:
    path = subprocess.run(["cc", "-print-file-name=libasan.so"], capture_output=True,
                          text=True, timeout=30).stdout.strip()
    return path if os.path.isabs(path) else None


class Host:
    def __init__(self, build: Path, server: ScenarioProcess) -> None:
        self.build, self.server = build, server
        self.sock = build / "s"
        (build / "pam.d").mkdir()

    def module(self, fault: str, asan: bool = False) -> Path:
        out = self.build / f"{fault or 'correct'}{'-asan' if asan else ''}"
        if (out / "pam_faulty.so").exists():  # built by an earlier test
            return out / "pam_faulty.so"
        shutil.copytree(FAULTY, out)
        flags = ["CFLAGS=-O1 -g -fsanitize=address -fno-omit-frame-pointer",
                 "LDFLAGS=-fsanitize=address"] if asan else []
        subprocess.run(["make", "-s", "-C", str(out), f"FAULT={fault}", *flags], check=True,
                       capture_output=True, timeout=120)
        return out / "pam_faulty.so"

    def attempt(self, module: Path, *, valgrind: bool = False,
                asan: str | None = None) -> Attempt:
        name = f"svc-{module.parent.name}"
        (self.build / "pam.d" / name).write_text(
            f"auth required {module} {self.sock} server_uid={os.getuid()} timeout=2\n")
        req: dict[str, Any] = {"argv": ["--service", name, "--user", "alice", "--confdir",
                                        str(self.build / "pam.d"), "--password", "pw"],
                               "timeout": 60, "valgrind": valgrind}
        if asan:
            req.update(asan=True, env={"LD_PRELOAD": asan})
        (raw,) = run_batch(local_exec, [req], 90,
                           agent_argv=local_agent_argv(self.build / "pamdrive", jobs=1))
        return Attempt(raw)


@pytest.fixture(scope="module")
def host() -> Iterator[Host]:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    build = Path(tempfile.mkdtemp(prefix="pc-mc-", dir="/tmp"))
    server = None
    try:
        subprocess.run(["make", "-s", "-C", str(resources.containers_dir() / "agent"),
                        f"O={build}"], check=True, capture_output=True, timeout=120)
        server = ScenarioProcess.local(build / "s")
        yield Host(build, server)
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(build, ignore_errors=True)


#: fault -> (scenario, args) that shows it, and the valgrind kind expected
MEMORY_FAULTS = {
    "oob_read": (("grant", {}), "SyscallParam"),
    "double_free": (("deny", {}), "InvalidFree"),
    "uninit_reply": (("grant", {}), "UninitCondition"),
    "overlap_copy": (("malformed", {"reply": b" 0".hex()}), "Overlap"),
}


@pytest.mark.parametrize("fault", sorted(MEMORY_FAULTS))
def test_gallery_memory_fault_fails_under_valgrind(host: Host, fault: str) -> None:
    (scenario, args), kind = MEMORY_FAULTS[fault]
    host.server.set(scenario, **args)
    attempt = host.attempt(host.module(fault), valgrind=True)
    problems = attempt_problems(attempt)
    assert problems and problems[0].startswith(f"valgrind {kind}:"), (problems, attempt.raw)
    assert "pam_faulty.c" in problems[0]
    host.server.log(wait=5)


def test_correct_build_passes_under_valgrind(host: Host) -> None:
    module = host.module("")
    for scenario, args in [("grant", {}), ("deny", {}), ("malformed", {"reply": b" 0".hex()})]:
        host.server.set(scenario, **args)
        attempt = host.attempt(module, valgrind=True)
        assert attempt_problems(attempt) == [], (scenario, attempt.raw)
    host.server.log(wait=5)


@pytest.mark.parametrize(("fault", "scenario", "args", "report"), [
    ("oob_read", "malformed", {"reply": b"X" * 20}, "heap-buffer-overflow"),
    ("double_free", "deny", {}, "attempting double-free"),
    ("overlap_copy", "malformed", {"reply": b" 0"}, "strcpy-param-overlap"),
    ("", "malformed", {"reply": b" 0"}, None),
])
def test_gallery_memory_fault_fails_under_asan(host: Host, fault: str, scenario: str,
                                               args: dict[str, Any], report: str | None) -> None:
    libasan = _libasan()
    if libasan is None:
        pytest.skip("no libasan")
    host.server.set(scenario, **{k: v.hex() for k, v in args.items()})
    attempt = host.attempt(host.module(fault, asan=True), asan=libasan)
    problems = attempt_problems(attempt)
    if report is None:
        assert problems == [], attempt.raw
    else:
        assert problems and problems[0].startswith(f"ASan {report}"), (problems, attempt.raw)
    host.server.log(wait=5)


def _judge_on_host(host: Host, fault: str) -> CaseContext:
    module = host.module(fault)
    name = f"svc-{module.parent.name}"
    (host.build / "pam.d" / name).write_text(
        f"auth required {module} {host.sock} server_uid={os.getuid()} timeout=2\n")
    ctx = CaseContext(target=None)

    def run(reqs: list[dict[str, Any]]) -> list[Attempt]:
        return [Attempt(r) for r in run_batch(
            local_exec, reqs, 300, agent_argv=local_agent_argv(host.build / "pamdrive", jobs=1))]

    judge_memcheck(ctx, MemcheckRun(
        request={"argv": ["--service", name, "--user", "alice", "--confdir",
                          str(host.build / "pam.d"), "--password", "pw"],
                 "timeout": 60, "valgrind": True},
        run=run, record=lambda label, a: None, asan=AsanModule(None, "host test"),
        what="a granted login"))
    return ctx


def test_a_leak_per_attempt_fails_through_pamdrive(host: Host) -> None:
    """pamdrive's repeated authenticate in one process shows the leak growing."""
    host.server.set("grant")
    with pytest.raises(Fail, match=r"after 1 attempt, \d+ bytes after 3 in one process"):
        _judge_on_host(host, "leak_per_attempt")
    ctx = _judge_on_host(host, "")  # the correct build: no leak, no second run
    assert "leak_growth" not in ctx.extra and not ctx.informational_reasons
    host.server.log(wait=5)
