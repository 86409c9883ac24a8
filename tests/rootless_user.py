"""Run ``pamconform`` as an unprivileged user with no Docker engine (the root-less tier's tests).

The self-tests run as root; the root-less tier must work without it, so its tests run
the CLI as ``nobody`` (``setpriv``: uid/gid 65534, no supplementary groups, no
capabilities), with a private HOME and ``DOCKER_HOST`` pointing at a socket that does
not exist.  When this interpreter is not reachable by ``nobody`` (e.g. under a 0700
``/root``), the system ``python3`` runs instead, with a copy of the third-party
packages pamconform imports (a private, world-readable directory of this run).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
NOBODY = 65534
DROP = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
        "--inh-caps=-all", "--bounding-set=-all", "--"]

_IMPORTS = ("import pamconform.cli.main, pamconform.drivers.host_module, "
            "pamconform.lab.module_run, pamconform.report")


def can_drop() -> bool:
    return os.geteuid() == 0 and shutil.which("setpriv") is not None


def _imports(python: str, pythonpath: str) -> bool:
    """Can ``nobody`` import what the CLI needs with this interpreter?"""
    res = subprocess.run([*DROP, python, "-c", _IMPORTS], capture_output=True, timeout=60,
                         check=False, cwd="/", env={"PYTHONPATH": pythonpath,
                                                    "PATH": "/usr/bin:/bin"})
    return res.returncode == 0


def python_for_nobody(workdir: Path) -> tuple[str, str]:
    """(interpreter, PYTHONPATH) with which ``nobody`` can import pamconform from REPO."""
    if _imports(sys.executable, str(REPO)):
        return sys.executable, str(REPO)
    system = "/usr/bin/python3"
    site = Path(sysconfig.get_paths()["purelib"])
    probe = (f"import sys, json; sys.path[:0] = [{str(REPO)!r}]; {_IMPORTS}; "
             "print(json.dumps(sorted({m.__name__.split('.')[0] for m in list(sys.modules.values())"
             f" if str(getattr(m, '__file__', '') or '').startswith({str(site)!r})}})))")
    res = subprocess.run([sys.executable, "-c", probe], capture_output=True, timeout=60,
                         check=True, cwd=workdir)
    target = workdir / "site"
    target.mkdir()
    for name in json.loads(res.stdout):
        for cand in (site / name, site / f"{name}.py"):
            if cand.is_dir():
                shutil.copytree(cand, target / name, ignore=shutil.ignore_patterns("__pycache__"))
            elif cand.is_file():
                shutil.copy(cand, target / cand.name)
    _open_up(workdir)
    if not _imports(system, f"{target}:{REPO}"):
        raise RuntimeError(f"nobody cannot import pamconform with {system} and {target}")
    return system, f"{target}:{REPO}"


def _open_up(top: Path) -> None:
    for dirpath, _dirs, files in os.walk(top):
        os.chmod(dirpath, 0o755)
        for f in files:
            os.chmod(os.path.join(dirpath, f), 0o644)


@contextmanager
def nobody_workdir() -> Iterator[Path]:
    """A directory ``nobody`` can reach (pytest's own tmp is root's, mode 0700); removed after."""
    path = Path(tempfile.mkdtemp(prefix="pcn-"))  # short: sockets live below it
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class Nobody:
    """Runs the CLI as ``nobody``; each call gets a fresh private HOME (its report in
    ``HOME/report``, its TMPDIR ``HOME/tmp``)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        os.chmod(workdir, 0o755)
        self.python, self.pythonpath = python_for_nobody(workdir)

    def start(self, *args: str) -> tuple[subprocess.Popen[bytes], Path]:
        """``pamconform ARGS --report DIR`` started as nobody; (the process, DIR)."""
        home = Path(tempfile.mkdtemp(prefix="h-", dir=self.workdir))
        report = home / "report"
        (home / "tmp").mkdir()  # the run's own TMPDIR: what it leaves behind shows there
        for path in (home, home / "tmp"):
            os.chown(path, NOBODY, NOBODY)
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home),
               "PYTHONPATH": self.pythonpath, "DOCKER_HOST": f"unix://{home}/no-docker.sock",
               "TMPDIR": str(home / "tmp"), "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}
        proc = subprocess.Popen([*DROP, self.python, "-m", "pamconform.cli", *args,
                                 "--report", str(report)],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                                cwd=home)
        return proc, report

    def pamconform(self, *args: str, timeout: float = 600) -> tuple[int, str, dict[str, Any]]:
        """(exit status, output, index.json) of ``pamconform ARGS --report DIR``."""
        proc, report = self.start(*args)
        try:
            raw, _ = proc.communicate(timeout=timeout)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        index = report / "index.json"
        data = json.loads(index.read_text()) if index.exists() else {}
        return proc.returncode, raw.decode(errors="replace"), data


def verdicts(index: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """case id -> (verdict, message) of the first target of a report."""
    target = index["targets"][0]
    return {c["id"]: (c["verdict"], c["message"]) for c in target["cases"]}
