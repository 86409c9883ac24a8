"""No verdict changes because cases run at once, over faulty module builds: the reference
module and three builds of ``tests/fixtures/faulty_modules`` in one ``pamconform module``
command, with ``--jobs 1`` and with the default pool, compared by ``pamconform diff`` and
case by case.

The faults are those whose verdicts could depend on what runs beside a case: a build that
hangs on a silent server (its cases hold a pool slot up to the hang bound), one that
aborts the application on every denial (``pamdrive`` dies beside the other lanes) and one
that reads heap bytes it never wrote (caught by memcheck beside the other lanes; without a
tool it grants a ``0`` followed by a NUL).
The selection is the direct cases, the ones the pool runs at once in lanes, plus the
memcheck cases grant and deny (several attempts in one process; they catch the heap
faults under valgrind). What is left out, to keep the test near 4 minutes on 2 CPUs:
the other memcheck cases (they all hold ``valgrind``, so they run one at a time either
way, at about a minute per target), the e2e cases (sshd, su: all hold ``lab-server``;
with the memcheck ones they are compared for the reference module in
``test_concurrency_verdicts.py``), and ``leak_per_attempt`` (caught only by memcheck's
count in one process, which nothing beside it can change: 40-60 s more, and it gave the
same verdicts both ways when checked).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import test_concurrency_verdicts as base

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parent.parent
FAULTY = ROOT / "tests" / "fixtures" / "faulty_modules"
SELECTION = ["--cases", "redir.module.[!m]*",  # every direct case but memcheck-*
             "--cases", "redir.module.memcheck-grant", "--cases", "redir.module.memcheck-deny"]
#: fault -> cases that must FAIL for it with either setting (so the comparison is not
#: over PASSes only)
FAULTS = {
    "no_read_timeout": {"redir.module.server-silence", "redir.module.server-accept-no-read"},
    "double_free": {"redir.module.server-deny", "redir.module.reply-1",
                    "redir.module.memcheck-deny"},
    "uninit_reply": {"redir.module.memcheck-grant"},
}
#: A SHOULD case graded on a race between the server's early reply and the module's look
#: for unsolicited bytes: it flips run to run with --jobs 1 too (``exclusive="timing"``).
RACY = "redir.module.server-reply-before-request"


def _faulty_source(fault: str, parent: Path) -> Path:
    """A copy of the fixture that builds ``fault`` with a plain ``make``, as the reference
    module's ``.so`` name (one ``--build``/``--so`` serves every SRC of the command)."""
    src = parent / fault
    src.mkdir()
    for name in ("pam_faulty.c", "pam_faulty.map", "Makefile"):
        shutil.copy(FAULTY / name, src / name)
    (src / "GNUmakefile").write_text(
        f"FAULT = {fault}\ninclude Makefile\nall: pam_redirector.so\n"
        "pam_redirector.so: pam_faulty.so\n\tcp pam_faulty.so $@\n")
    return src


def test_faulty_modules_same_verdicts_with_one_job_and_with_the_pool(
        tmp_path: Path, docker_client: object) -> None:
    sources = [str(ROOT / "modules" / "pam_redirector")]
    names = ["--name", "reference"]
    for fault in FAULTS:
        sources.append(str(_faulty_source(fault, tmp_path)))
        names += ["--name", f"faulty:{fault}"]
    command = ["module", *sources, *names, "--args", "{socket} timeout=3", *SELECTION,
               "--quiet"]
    one, pool = tmp_path / "jobs-1", tmp_path / "jobs-default"
    first = base._pamconform(*command, "--jobs", "1", "--report", str(one), timeout=900)
    second = base._pamconform(*command, "--report", str(pool), timeout=900)
    # 1: the faulty builds FAIL; 2 or 3 would be a usage error or a lab that did not run
    assert first.returncode == second.returncode == 1, (first.stdout[-3000:] + first.stderr
                                                        + second.stdout[-3000:] + second.stderr)
    a, b = base._verdicts(one), base._verdicts(pool)
    assert len(a) == 4 * len({cid for _, cid in a}) >= 4 * 45
    assert list(a) == list(b)  # same targets and cases, same order

    for verdicts in (a, b):
        reference = {cid: v for (t, cid), v in verdicts.items() if t == "reference"}
        assert {c: v for c, v in reference.items() if v != "PASS" and c != RACY} == {}
        assert reference[RACY] in ("PASS", "NON-STRICT")
        for fault, caught in FAULTS.items():
            missed = {c: verdicts[(f"faulty:{fault}", c)] for c in caught
                      if verdicts[(f"faulty:{fault}", c)] != "FAIL"}
            assert missed == {}, fault

    changed = {k: (a[k], b[k]) for k in a if a[k] != b[k]}
    racy = {k: v for k, v in changed.items() if k[1] == RACY}
    assert {k: v for k, v in changed.items() if k[1] != RACY} == {}
    assert all(set(v) <= {"PASS", "NON-STRICT"} for v in racy.values())

    diff = base._pamconform("diff", str(one), str(pool), "--time-threshold", "1000")
    assert diff.returncode == 0, diff.stdout + diff.stderr
    if not racy:
        assert f"no changes ({len(a)} cases in both)" in diff.stdout, diff.stdout
        return
    summary = re.search(r"(\d+) newly failing, (\d+) newly passing, (\d+) other changes, "
                        r"(\d+) added, (\d+) removed, .* \((\d+) cases in both\)", diff.stdout)
    assert summary is not None, diff.stdout
    assert summary.groups() == ("0", "0", str(len(racy)), "0", "0", str(len(a))), diff.stdout
