"""pamdrive and the batch agent, driving real modules against the scenario server.

Everything is built into a temporary directory (nothing lands in the source tree);
service files live in a temporary confdir and name modules by absolute path.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pamconform.core import resources
from pamconform.drivers.agent import AgentError, local_agent_argv, local_exec, run_batch
from pamconform.lab.scenario_control import ScenarioProcess

PAM_HEADER = Path("/usr/include/security/pam_appl.h")
SECURITY_DIR = Path("/lib/x86_64-linux-gnu/security")
BUILD_TIMEOUT_S = 120
ME = os.getuid()

#: A module misbehaving on request: its first argument says how.
MISBEHAVE_C = r"""
#include <security/pam_modules.h>
#include <stdlib.h>
#include <string.h>
int pam_sm_authenticate(pam_handle_t *h, int f, int c, const char **v) {
    (void)h; (void)f;
    if (c > 0 && strcmp(v[0], "exit") == 0) exit(3);
    if (c > 0 && strcmp(v[0], "segv") == 0) { volatile int *p = NULL; return *p; }
    if (c > 0 && strcmp(v[0], "invalid") == 0) {
        int *p = malloc(4 * sizeof(*p)), x = p[4];
        free(p);
        return x == 12345 ? PAM_SUCCESS : PAM_AUTH_ERR;
    }
    return PAM_SUCCESS;
}
int pam_sm_setcred(pam_handle_t *h, int f, int c, const char **v) {
    (void)h; (void)f; (void)c; (void)v; return PAM_SUCCESS;
}
"""


def _skip_reason() -> str | None:
    if shutil.which("cc") is None:
        return "no C compiler: `cc` is not on PATH"
    if shutil.which("make") is None:
        return "`make` is not on PATH"
    if not PAM_HEADER.exists():
        return f"PAM headers missing ({PAM_HEADER}): install libpam0g-dev"
    if not (SECURITY_DIR / "pam_permit.so").exists():
        return f"no system PAM modules in {SECURITY_DIR}"
    return None


pytestmark = pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")


def _run(argv: list[str]) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S,
                          check=False)
    assert proc.returncode == 0, f"{argv} failed:\n{proc.stdout}\n{proc.stderr}"


@dataclass
class Lab:
    dir: Path
    confdir: Path
    pamdrive: Path
    sock: Path
    server: ScenarioProcess

    def service(self, name: str, *lines: str) -> str:
        (self.confdir / name).write_text("\n".join(lines) + "\n")
        return name

    def run(self, requests: list[dict[str, Any]], timeout: float = 60) -> list[dict[str, Any]]:
        return run_batch(local_exec, requests, timeout,
                         agent_argv=local_agent_argv(self.pamdrive, jobs=4))

    def one(self, *argv: str, **request: Any) -> dict[str, Any]:
        return self.run([{"argv": list(argv), **request}])[0]


def _step(result: dict[str, Any], index: int = 0) -> dict[str, Any]:
    assert result["status"] == "ran", result
    step: dict[str, Any] = result["result"]["steps"][index]
    return step


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    build = Path(tempfile.mkdtemp(prefix="pc-", dir="/tmp"))
    server: ScenarioProcess | None = None
    try:
        _run(["make", "-s", "-C", str(resources.containers_dir() / "agent"), f"O={build}"])
        src = resources.modules_dir() / "pam_redirector"
        _run(["cc", "-O2", "-g", "-Wall", "-Wextra", "-Werror", "-fPIC", "-shared",
              f"-Wl,--version-script={src / 'pam_redirector.map'}", "-Wl,-z,defs",
              "-o", str(build / "pam_redirector.so"), str(src / "pam_redirector.c"), "-lpam"])
        (build / "misbehave.c").write_text(MISBEHAVE_C)
        _run(["cc", "-g", "-fPIC", "-shared", "-o", str(build / "pam_misbehave.so"),
              str(build / "misbehave.c")])
        confdir = build / "pam.d"
        confdir.mkdir()
        server = ScenarioProcess.local(build / "s")
        yield Lab(build, confdir, build / "pamdrive", build / "s", server)
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(build, ignore_errors=True)


@pytest.fixture
def redir(lab: Lab) -> str:
    return lab.service(
        "redir",
        f"auth required {lab.dir / 'pam_redirector.so'} {lab.sock} server_uid={ME} timeout=1")


def _attempt(service: str, lab: Lab, *extra: str) -> list[str]:
    return ["--service", service, "--user", "alice", "--confdir", str(lab.confdir),
            "--password", "pw", *extra]


@pytest.mark.parametrize(("scenario", "expected"), [
    ("grant", "PAM_SUCCESS"),
    ("deny", "PAM_AUTH_ERR"),
    ("close-after-request", "PAM_AUTH_ERR"),
])
def test_redirector_through_the_agent(lab: Lab, redir: str, scenario: str,
                                      expected: str) -> None:
    lab.server.set(scenario)
    result = lab.one(*_attempt(redir, lab))
    step = _step(result)
    assert step["name"] == expected, result
    assert result["result"]["prompts"][0]["style"] == "PROMPT_ECHO_OFF"
    log = lab.server.log(wait=10)
    assert [bytes.fromhex(r["received_hex"]) for r in log] == [b"alice\npw\n"]
    assert log[0]["peer_uid"] == ME


def test_silence_times_out_as_authinfo_unavail(lab: Lab, redir: str) -> None:
    lab.server.set("silence")
    step = _step(lab.one(*_attempt(redir, lab)))
    assert step["name"] == "PAM_AUTHINFO_UNAVAIL"
    assert 800 <= step["ms"] < 2500, step
    assert lab.server.log(wait=10)[0]["closed_by"] == "client"


def test_missing_socket_is_authinfo_unavail(lab: Lab) -> None:
    service = lab.service(
        "nosock",
        f"auth required {lab.dir / 'pam_redirector.so'} {lab.dir / 'absent'} "
        f"server_uid={ME} timeout=1")
    assert _step(lab.one(*_attempt(service, lab)))["name"] == "PAM_AUTHINFO_UNAVAIL"


def test_authtok_bridge_feeds_use_first_pass(lab: Lab) -> None:
    service = lab.service(
        "firstpass",
        f"auth optional {lab.dir / 'pam_pamdrive_authtok.so'}",
        f"auth required {lab.dir / 'pam_redirector.so'} {lab.sock} server_uid={ME} "
        f"timeout=1 use_first_pass")
    lab.server.set("grant")
    result = lab.one("--service", service, "--user", "bob", "--confdir", str(lab.confdir),
                     "--authtok", "s3cret")
    assert _step(result)["name"] == "PAM_SUCCESS"
    assert result["result"]["prompts"] == []
    items = {i["item"]: i["name"] for i in result["result"]["items"]}
    assert items == {"PAM_AUTHTOK": "PAM_BAD_ITEM", "env:PAMDRIVE_AUTHTOK": "PAM_SUCCESS"}
    log = lab.server.log(wait=10)
    assert bytes.fromhex(log[0]["received_hex"]) == b"bob\ns3cret\n"


def test_conversation_failure_sends_nothing(lab: Lab, redir: str) -> None:
    lab.server.set("grant")
    for extra in (["--conv-fail"], []):
        argv = ["--service", redir, "--user", "alice", "--confdir", str(lab.confdir), *extra]
        result = lab.one(*argv)
        assert _step(result)["name"] == "PAM_CONV_ERR"
        assert result["result"]["prompts"][0]["answered"] is False
    assert lab.server.log(wait=1) == []


def test_system_modules_and_life_cycle(lab: Lab) -> None:
    permit = lab.service("permit", *(f"{group} required {SECURITY_DIR / 'pam_permit.so'}"
                                     for group in ("auth", "account", "password", "session")))
    deny = lab.service("deny", f"auth required {SECURITY_DIR / 'pam_deny.so'}")
    debug = lab.service(
        "debug",
        f"auth required {SECURITY_DIR / 'pam_debug.so'} auth=perm_denied",
        f"account required {SECURITY_DIR / 'pam_debug.so'} acct=new_authtok_reqd",
        f"password required {SECURITY_DIR / 'pam_permit.so'}",
        f"session required {SECURITY_DIR / 'pam_permit.so'}")
    base = ["--user", "u", "--confdir", str(lab.confdir)]
    ok, no, dbg, dbg_all = lab.run([
        {"argv": ["--service", permit, *base, "--steps", "all"]},
        {"argv": ["--service", deny, *base, "--steps", "authenticate,acct_mgmt"]},
        {"argv": ["--service", debug, *base]},
        {"argv": ["--service", debug, *base, "--steps", "all", "--keep-going"]},
    ])
    assert [s["step"] for s in ok["result"]["steps"]] == [
        "authenticate", "acct_mgmt", "setcred", "open_session", "close_session", "delete_cred"]
    assert {s["name"] for s in ok["result"]["steps"]} == {"PAM_SUCCESS"}
    assert ok["result"]["pam_end"] == 0
    assert [(s["step"], s["name"]) for s in no["result"]["steps"]] == [
        ("authenticate", "PAM_AUTH_ERR")]  # stopped at the first failure
    assert _step(dbg)["name"] == "PAM_PERM_DENIED"
    assert dbg["result"]["messages"] == [
        {"style": "TEXT_INFO", "msg": "auth=perm_denied", "step": "authenticate"}]
    steps = {s["step"]: s["name"] for s in dbg_all["result"]["steps"]}
    assert steps["acct_mgmt"] == "PAM_NEW_AUTHTOK_REQD"
    assert steps["chauthtok"] == "PAM_SUCCESS"  # asked for by acct_mgmt


def test_a_fail_delay_is_recorded_not_slept(lab: Lab) -> None:
    """A hang bound must measure the module, not the delay it asks libpam for."""
    service = lab.service("faildelay",
                          f"auth required {SECURITY_DIR / 'pam_faildelay.so'} delay=4000000",
                          f"auth required {SECURITY_DIR / 'pam_deny.so'}")
    start = time.monotonic()
    result = lab.one("--service", service, "--user", "u", "--confdir", str(lab.confdir))
    assert time.monotonic() - start < 3.0  # libpam would sleep 2-6 s
    assert _step(result)["name"] == "PAM_AUTH_ERR"
    assert 2_000_000 <= result["result"]["fail_delay_us"] <= 6_000_000


def test_json_escaping(lab: Lab) -> None:
    service = lab.service("echo", f"auth required {SECURITY_DIR / 'pam_echo.so'} <%u>")
    user = 'q"b\\s\tc\u00e9\x01\x7f'
    result = lab.one("--service", service, "--user", user, "--confdir", str(lab.confdir))
    assert result["result"]["messages"][0]["msg"] == f"<{user}>"


@pytest.mark.parametrize(("how", "status"), [("exit", "exited"), ("segv", "crashed")])
def test_module_that_ends_the_process(lab: Lab, how: str, status: str) -> None:
    service = lab.service(f"mis-{how}", f"auth required {lab.dir / 'pam_misbehave.so'} {how}")
    result = lab.one("--service", service, "--user", "u", "--confdir", str(lab.confdir))
    assert result["status"] == status, result
    if how == "exit":
        assert result["exit_code"] == 3
        assert result["result"]["in_step"] == "authenticate"
    else:
        assert result["signal"] == 11
        assert result["result"] is None


def test_hung_attempt_is_killed(lab: Lab, redir: str) -> None:
    # The module bounds its own wait at 1 s; a shorter agent timeout catches it first.
    lab.server.set("silence")
    result = lab.one(*_attempt(redir, lab), timeout=0.3)
    assert result["status"] == "hung"
    assert result["wall_ms"] < 2000
    lab.server.log(wait=10)


def test_usage_error_is_a_harness_error(lab: Lab) -> None:
    result = lab.one("--no-such-option")
    assert result["status"] == "error"
    assert result["exit_code"] == 2


def test_batch_reports_every_attempt_in_order(lab: Lab, redir: str) -> None:
    lab.server.set("deny")
    requests = [{"id": f"a{i}", "argv": _attempt(redir, lab)} for i in range(20)]
    results = lab.run(requests)
    assert [r["id"] for r in results] == [f"a{i}" for i in range(20)]
    assert {_step(r)["name"] for r in results} == {"PAM_AUTH_ERR"}
    assert len(lab.server.log(wait=10)) == 20


def test_missing_results_raise(lab: Lab) -> None:
    def broken_exec(argv: list[str], stdin: bytes, timeout: float) -> tuple[int, bytes, bytes]:
        return 1, b"", b"boom"

    with pytest.raises(AgentError, match="answered 0 of 1"):
        run_batch(broken_exec, [{"argv": ["--service", "x"]}], 5)


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_valgrind(lab: Lab, redir: str) -> None:
    invalid = lab.service("mis-invalid",
                          f"auth required {lab.dir / 'pam_misbehave.so'} invalid")
    lab.server.set("grant")
    clean, dirty = lab.run([
        {"argv": _attempt(redir, lab), "valgrind": True, "timeout": 60},
        {"argv": ["--service", invalid, "--user", "u", "--confdir", str(lab.confdir)],
         "valgrind": True, "timeout": 60},
    ], timeout=120)
    assert _step(clean)["name"] == "PAM_SUCCESS"
    assert clean["valgrind"]["errors"] == 0, clean["valgrind"]
    assert clean["valgrind"]["leaks"].startswith("definitely lost: 0 bytes")
    assert dirty["valgrind"]["errors"] > 0
    assert dirty["valgrind"]["invalid"][0].startswith("InvalidRead")
    assert "misbehave.c" in dirty["valgrind"]["invalid"][0]
    lab.server.log(wait=10)


def test_a_batch_stopped_on_timeout_leaves_no_pamdrive_behind(tmp_path: Path) -> None:
    """The agent starts each pamdrive in a session of its own: stopped, it kills them
    (else a hung module's pamdrive outlived the run)."""
    pids = tmp_path / "pids"
    fake = tmp_path / "pamdrive"
    fake.write_text(f"#!/bin/sh\necho $$ >> {pids}\nexec sleep 30\n")
    fake.chmod(0o755)
    request = json.dumps({"id": 1, "argv": ["--service", "x"], "timeout": 20}).encode()
    code, _, _ = local_exec(local_agent_argv(fake, jobs=1), request + b"\n", 1.5)
    assert code == -signal.SIGKILL  # stopped on its timeout
    (pid,) = [int(p) for p in pids.read_text().split()]
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")
