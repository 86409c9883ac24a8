"""``pamconform module SRC --no-lab``: the root-less tier, run as ``nobody`` with no Docker.

The reference module passes every case that runs; the cases that need the lab are SKIPPED
with their reason (never dropped); faulty builds are caught without the lab; nothing is
left behind in /tmp.  (The lab and the root-less tier agree: test_rootless_agreement.py.)
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import signal
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from rootless_user import Nobody, can_drop, nobody_workdir, verdicts

from pamconform.core import resources
from pamconform.core.outcome import Skip
from pamconform.drivers.host_runner import HostRunner

pytestmark = [
    pytest.mark.skipif(not can_drop(), reason="needs root to become nobody (setpriv)"),
]

FAULTY = Path(__file__).resolve().parent / "fixtures" / "faulty_modules"
REFERENCE = resources.modules_dir() / "pam_redirector"
NEVER_GRANTS = Path(__file__).resolve().parent / "fixtures" / "never_grants"
FAST = ["--args", "{socket} timeout=2", "--hang-bound", "4"]
#: cases the root-less tier always skips, and why (a part of the reason)
LAB_ONLY = {
    "redir.module.planted-socket": "another user",
    "redir.module.planted-symlink": "another user",
    "redir.module.no-password-in-logs": "/dev/log",
    "redir.module.args-missing": "built-in path",
}
#: a SHOULD the reference module meets only when its check wins a race (see test_module_direct)
RACY = {"redir.module.server-reply-before-request"}


@pytest.fixture(scope="module")
def nobody() -> Iterator[Nobody]:
    with nobody_workdir() as workdir:
        yield Nobody(workdir)


def _leftovers(report: Path) -> list[str]:
    """The private directories a run left in its TMPDIR (``report``'s sibling)."""
    return glob.glob(f"{report.parent}/tmp/pamconform-nolab-*")


def test_reference_module_without_lab(nobody: Nobody) -> None:
    proc, report = nobody.start("module", str(REFERENCE), "--no-lab", *FAST,
                                "--exclude-cases", "redir.module.memcheck-*")
    raw, _ = proc.communicate(timeout=600)
    code, out = proc.returncode, raw.decode(errors="replace")
    index = json.loads((report / "index.json").read_text())
    assert code == 0, out
    assert "uid 65534" in out
    got = verdicts(index)
    target = index["targets"][0]
    assert target["trusted_own_socket"] is True
    assert "server_uid=65534" in target["args"]
    for cid, (verdict, message) in got.items():
        if cid.startswith("redir.e2e."):
            assert verdict == "SKIPPED" and "needs the lab" in message, (cid, verdict)
        elif cid in LAB_ONLY:
            assert verdict == "SKIPPED" and LAB_ONLY[cid] in message, (cid, message)
        elif cid not in RACY:
            assert verdict == "PASS", (cid, verdict, message)
    ran = [c for c, (v, _) in got.items() if v == "PASS"]
    assert len(ran) >= 40
    assert _leftovers(report) == []


def test_memcheck_runs_without_the_lab(nobody: Nobody) -> None:
    """valgrind sees no error in pamdrive or libpam, and catches a heap overflow."""
    cases = ["--cases", "redir.module.memcheck-grant", "--cases",
             "redir.module.memcheck-reply-4k-digits"]
    code, out, index = nobody.pamconform("module", str(REFERENCE), "--no-lab", *FAST, *cases)
    assert code == 0, out
    assert {v for v, _ in verdicts(index).values()} == {"PASS"}
    code, out, index = nobody.pamconform(
        "module", str(FAULTY), "--no-lab", *FAST, *cases, "--so", "pam_faulty.so",
        "--build", "make clean >/dev/null; make FAULT=oob_read")
    assert code == 1, out
    assert verdicts(index)["redir.module.memcheck-reply-4k-digits"][0] == "FAIL"


def _tmp_entries_of(uid: int) -> set[str]:
    return {e.path for e in os.scandir("/tmp") if e.stat(follow_symlinks=False).st_uid == uid}


def test_killed_and_valgrind_attempts_leave_nothing_in_tmp(nobody: Nobody) -> None:
    """Attempts killed as hung and attempts under valgrind leave nothing outside the run's
    private directory (pam_wrapper, used before, left a /tmp/pam.X copy of the service
    files for each, and picked its letter without a lock: see host_runner)."""
    uid = 65534
    before = _tmp_entries_of(uid)
    code, out, index = nobody.pamconform(
        "module", str(FAULTY), "--no-lab", *FAST, "--so", "pam_faulty.so",
        "--build", "make clean >/dev/null; make FAULT=no_read_timeout",
        "--cases", "redir.module.server-silence", "--cases", "redir.module.memcheck-grant")
    assert code == 1, out
    got = verdicts(index)
    assert got["redir.module.server-silence"][0] == "FAIL"  # hung, then killed
    assert "hung" in got["redir.module.server-silence"][1]
    assert got["redir.module.memcheck-grant"][0] == "PASS", got
    assert _tmp_entries_of(uid) - before == set()


@pytest.mark.parametrize(("fault", "case"), [
    ("grant_non_numeric", "redir.module.reply-00"),
    ("no_connect_timeout", "redir.module.server-backlog-full"),
    ("exit_on_error", "redir.module.path-no-socket"),
    ("ignores_silent", "redir.module.silent-flag"),
])
def test_faulty_build_caught_without_lab(nobody: Nobody, fault: str, case: str) -> None:
    code, out, index = nobody.pamconform(
        "module", str(FAULTY), "--no-lab", *FAST, "--so", "pam_faulty.so", "--cases", case,
        "--build", f"make clean >/dev/null; make FAULT={fault}")
    assert code == 1, out
    assert verdicts(index)[case][0] == "FAIL"


def test_module_refusing_own_socket_skips_what_it_would_hide(nobody: Nobody) -> None:
    """A module that insists on a root-owned socket (server_uid=0 given explicitly): the
    trust probe fails, so every case reaching the socket is SKIPPED, not a false verdict;
    cases with nothing to trust at the path still run."""
    code, out, index = nobody.pamconform(
        "module", str(REFERENCE), "--no-lab", "--args", "{socket} timeout=2 server_uid=0",
        "--hang-bound", "4", "--cases", "redir.module.grant", "--cases",
        "redir.module.reply-00", "--cases", "redir.module.path-no-socket")
    assert code == 0, out
    got = verdicts(index)
    assert got["redir.module.grant"][0] == "SKIPPED"
    assert "owned by the invoking user" in got["redir.module.grant"][1]
    assert got["redir.module.reply-00"][0] == "SKIPPED"
    assert got["redir.module.path-no-socket"][0] == "PASS"
    assert index["targets"][0]["trusted_own_socket"] is False


def test_module_that_sends_but_never_grants_is_graded(nobody: Nobody) -> None:
    """The trust probe counts a module that sent its request as trusting the socket: a
    module that talks to its server but never grants (tests/fixtures/never_grants) has
    its cases graded, the grant FAILed as in the lab, not SKIPPED."""
    code, out, index = nobody.pamconform(
        "module", str(NEVER_GRANTS), "--no-lab", "--so", "pam_never_grants.so",
        "--build", "cc -fPIC -shared -o pam_never_grants.so pam_never_grants.c -lpam",
        "--args", "{socket}", "--hang-bound", "4",
        "--cases", "redir.module.grant", "--cases", "redir.module.reply-00")
    assert code == 1, out
    got = verdicts(index)
    assert got["redir.module.grant"][0] == "FAIL"
    assert got["redir.module.reply-00"][0] == "PASS"
    assert index["targets"][0]["trusted_own_socket"] is True


def test_ctrl_c_leaves_nothing_behind(nobody: Nobody) -> None:
    """SIGINT during a hanging attempt: exit 130, a report, no process, no directory."""
    proc, report = nobody.start("module", str(REFERENCE), "--no-lab", "--args",
                                "{socket} timeout=60", "--hang-bound", "30",
                                "--cases", "redir.module.server-silence")
    deadline = time.monotonic() + 60
    while not glob.glob(f"{report.parent}/tmp/pamconform-nolab-*/pam.d/pc-probe*"):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.2)
    time.sleep(1.5)  # the attempt is now waiting on the silent server
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 130, out
    assert (report / "index.json").exists()
    assert _leftovers(report) == []
    # this run's processes only (other tests may run as nobody beside it): each names a
    # path in the run's home (the agent its pamdrive, pamdrive its --confdir, the
    # scenario server its socket)
    left = subprocess.run(["pgrep", "-u", "65534", "-f", str(report.parent)],
                          capture_output=True, check=False)
    assert left.stdout == b"", left.stdout


def test_bad_input_is_one_line(nobody: Nobody) -> None:
    code, out, _ = nobody.pamconform("module", str(REFERENCE), "--no-lab", "--keep")
    assert code == 2
    assert "Traceback" not in out and "--keep" in out


def test_host_runner_maps_lab_paths_and_skips_lab_only(tmp_path: Path) -> None:
    runner = HostRunner(tmp_path / "r", pamdrive=Path("/x/pamdrive"),
                        authtok_module=Path("/x/pam_pamdrive_authtok.so"),
                        module=Path("/x/pam_m.so"), so="pam_m.so")
    assert runner.path("/run/a/socket") == str(tmp_path / "r" / "lab" / "run/a/socket")
    assert runner.module_ref("pam_m.so") == "/x/pam_m.so"
    # libpam reads the private service directory (pam_start_confdir), nothing preloaded
    assert runner.attempt_args() == ["--confdir", str(tmp_path / "r" / "pam.d")]
    other = (tmp_path / "r" / "pam.d" / "other").read_text()
    assert "auth required pam_deny.so" in other
    assert stat.S_IMODE(os.stat(tmp_path / "r" / "pam.d").st_mode) == 0o700
    with pytest.raises(Skip, match="another user"):
        runner.scenario_argv(runner.path("/tmp/p/socket"), mode="0666", user="mallory")
    with pytest.raises(Skip, match="built-in path"):
        runner.check_service("pam_m.so", "auth required /x/pam_m.so\n")
    runner.check_service("pam_m.so", "auth required /x/pam_m.so /nowhere/socket\n")
    runner.close()
    assert not (tmp_path / "r").exists()


def test_a_timed_out_command_whose_grandchild_holds_the_pipes_is_bounded(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On timeout the process group is killed; a grandchild that left it (setsid) keeps
    stdout open: the runner closes the pipes instead of raising TimeoutExpired."""
    from pamconform.drivers import agent

    monkeypatch.setattr(agent, "KILLED_GRACE_S", 0.5)
    runner = HostRunner(tmp_path / "r", pamdrive=Path("/x/pamdrive"),
                        authtok_module=Path("/x/pam_pamdrive_authtok.so"),
                        module=Path("/x/pam_m.so"), so="pam_m.so")
    pidfile = tmp_path / "grandchild.pid"
    try:
        start = time.monotonic()
        code, out, _err = runner._exec(
            ["sh", "-c", f"setsid sleep 60 & echo $! > {pidfile}; echo started; sleep 60"],
            b"", 0.5)
        assert time.monotonic() - start < 8
        assert code == -signal.SIGKILL and out == b""
        assert not runner._live
    finally:
        if pidfile.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pidfile.read_text()), signal.SIGKILL)
        runner.close()
