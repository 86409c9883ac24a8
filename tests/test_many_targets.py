"""Several targets in one run: ``server S1 S2``, the project file, and what each cost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from pamconform.lab import gallery
from pamconform.lab.localserver import LocalServer, reference_command
from pamconform.protocols.redirector.hooks import REFERENCE_CREDENTIALS

ROOT = Path(__file__).resolve().parents[1]
#: A case the keeps-open server fails and one it passes (both quick).
CASES = ["--cases", "redir.server.close-after-reply", "--cases", "redir.server.grant-valid"]


def pamconform(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
               timeout: float = 180) -> subprocess.CompletedProcess[str]:
    full = dict(os.environ, PYTHONPATH=str(ROOT), **(env or {}))
    full.pop("PAMCONFORM_CREDENTIALS", None) if env is None else None
    return subprocess.run([sys.executable, "-m", "pamconform.cli", *args], cwd=cwd or ROOT,
                          env=full, capture_output=True, text=True, timeout=timeout,
                          check=False)


@pytest.fixture(scope="module")
def sockets() -> Iterator[dict[str, Path]]:
    """The reference server and the keeps-open faulty server, running."""
    with LocalServer(reference_command(), REFERENCE_CREDENTIALS, name="ref") as ref, \
            LocalServer(gallery.commands()["keeps-open"], REFERENCE_CREDENTIALS,
                        name="keeps-open") as faulty:
        yield {"ref": ref.socket, "faulty": faulty.socket}


@pytest.fixture
def logins(tmp_path: Path) -> Path:
    path = tmp_path / "logins"
    path.write_text("".join(f"{u}:{p}\n" for u, p in REFERENCE_CREDENTIALS))
    path.chmod(0o600)
    return path


def _report(directory: Path) -> dict:
    return json.loads((directory / "index.json").read_text())


def _verdicts(data: dict) -> dict[str, dict[str, str]]:
    return {t["name"]: {c["id"]: c["verdict"] for c in t["cases"]} for t in data["targets"]}


def test_a_bad_later_socket_keeps_the_report_of_the_targets_checked(sockets, logins,
                                                                    tmp_path) -> None:
    out = tmp_path / "report"
    proc = pamconform("server", str(sockets["ref"]), str(tmp_path / "nonexistent"),
                      "--credentials-file", str(logins), *CASES, "--report", str(out),
                      "--quiet")
    assert proc.returncode == 2, proc.stderr
    assert "no such socket" in proc.stderr and "Traceback" not in proc.stderr
    assert list(_verdicts(_report(out))) == [str(sockets["ref"])]


def test_several_sockets_are_one_report_side_by_side(sockets, logins, tmp_path) -> None:
    out = tmp_path / "report"
    proc = pamconform("server", str(sockets["ref"]), str(sockets["faulty"]), "--name", "ref",
                      "--name", "keeps-open", "--credentials-file", str(logins), *CASES,
                      "--report", str(out), "--quiet")
    assert proc.returncode == 1, proc.stderr  # the faulty one FAILs a case
    data = _report(out)
    assert _verdicts(data) == {
        "ref": {"redir.server.close-after-reply": "PASS", "redir.server.grant-valid": "PASS"},
        "keeps-open": {"redir.server.close-after-reply": "FAIL",
                       "redir.server.grant-valid": "PASS"}}
    html = (out / "index.html").read_text()
    assert "Targets side by side" in html and "keeps-open" in html and "wall time" in html
    # what each target cost: in index.json, junit.xml and the console
    for target in data["targets"]:
        timing = target["timing"]
        assert timing["wall_s"] > 0 and timing["cases_s"] > 0
        assert timing["suites"]["redirector_server"]["cases"] == 2
        assert 0 < timing["suites"]["redirector_server"]["wall_s"] <= timing["wall_s"]
    suites = ET.parse(out / "junit.xml").getroot().findall("testsuite")
    assert [float(s.get("time", "")) for s in suites] == pytest.approx(
        [t["timing"]["wall_s"] for t in data["targets"]], abs=0.001)
    assert suites[0].find("properties/property[@name='suite.redirector_server.wall_s']") \
        is not None
    assert proc.stdout.count("\n  time: ") == 2 and "\nwall time: " in proc.stdout


def test_one_name_per_socket(sockets, logins, tmp_path) -> None:
    proc = pamconform("server", str(sockets["ref"]), str(sockets["faulty"]), "--name", "x",
                      "--credentials-file", str(logins), "--report", str(tmp_path / "r"))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "pamconform: error: server: 1 --name for 2 sockets: give one per socket, in order, "
        "or none"]


def test_the_same_name_twice_is_refused(sockets, logins, tmp_path) -> None:
    proc = pamconform("server", str(sockets["ref"]), str(sockets["faulty"]), "--name", "x",
                      "--name", "x", "--credentials-file", str(logins), "--report",
                      str(tmp_path / "r"))
    assert proc.returncode == 2 and "two targets are named 'x'" in proc.stderr


def test_project_file_targets_with_their_own_logins(sockets, logins, tmp_path) -> None:
    (tmp_path / "pamconform.toml").write_text(f"""
protocol = "redirector"

[options]
cases = ["redir.server.close-after-reply", "redir.server.grant-valid"]

[targets.our-auth]
kind = "server"
socket = "{sockets['ref']}"
credentials_file = "{logins.name}"

[targets.their-auth]
kind = "server"
socket = "{sockets['faulty']}"
credentials_env = "THEIR_LOGINS"
""")
    out = tmp_path / "report"
    env = {"THEIR_LOGINS": logins.read_text(), "PAMCONFORM_CREDENTIALS": ""}
    proc = pamconform("run", "--report", str(out), "--quiet", cwd=tmp_path, env=env)
    assert proc.returncode == 1, proc.stderr
    assert "the targets of" in proc.stdout
    assert _verdicts(_report(out)) == {
        "our-auth": {"redir.server.close-after-reply": "PASS", "redir.server.grant-valid": "PASS"},
        "their-auth": {"redir.server.close-after-reply": "FAIL",
                       "redir.server.grant-valid": "PASS"}}
    # the command line wins over the file's options
    proc = pamconform("run", "--cases", "redir.server.grant-valid", "--list", cwd=tmp_path,
                      env=env)
    assert proc.returncode == 0 and "1 cases" in proc.stdout, proc.stderr
    # the variable a target names must be set
    proc = pamconform("run", "--list", cwd=tmp_path, env={"PAMCONFORM_CREDENTIALS": ""})
    assert proc.returncode == 2
    assert proc.stderr.strip().endswith(
        "targets.their-auth.credentials_env: $THEIR_LOGINS is not set (USER:PASSWORD lines)")


@pytest.mark.parametrize(("text", "needle"), [
    ('[targets.a]\nkind = "server"\nsocket = "/s"\npassword = "hunter2"\n',
     "targets.a.password: an inline secret is refused"),
    ('[targets.a]\nkind = "server"\nsocket = "/s"\ncredentials_env = "bob:hunter2"\n',
     "targets.a.credentials_env: the NAME of an environment variable"),
    ('[targets.a]\nkind = "server"\nsocket = "/s"\n[targets.a.options]\ntoken = "t0k"\n',
     "targets.a.options.token: an inline secret is refused"),
    ('[targets.a]\nkind = "printer"\n', "targets.a.kind: expected one of server, module"),
    ('[targets.a]\nkind = "server"\n', "targets.a: a server target needs exactly one of"),
    ('[targets.a]\nkind = "server"\nsocket = "/s"\nso = "x.so"\n',
     "targets.a.so: not a key of a server target"),
    ('[targets.a]\nkind = "module"\npackage = "p"\nso = "x.so"\n',
     "targets.a.so: only for a module built from source"),
    ('protocol = "smtp"\n[targets.a]\nkind = "server"\nsocket = "/s"\n',
     "protocol: unknown protocol 'smtp'"),
    ('[targets.a]\nkind = "server"\nsocket = "/s"\n[targets.a.options]\nfrobnicate = 1\n',
     "targets.a.options.frobnicate: not an option of pamconform server"),
    ('[targets.a]\nkind = "server"\nsocket = "/s"\n[targets.a.options]\n'
     '"credentials=alice:hunter2xx" = true\n', "targets.a.options: an option name is"),
    ('[targets.a]\nkind = "server"\nsocket = "/s"\n[targets.a.options]\n'
     'user_password = "hunter2"\n', "targets.a.options.user_password: an inline secret"),
    ('[targets.a]\nkind = "server"\nsocket = "/s"\n[targets.a.options]\n'
     'credentials-file = "alice:hunter2"\n', "targets.a: --credentials-file (value not shown)"),
    ('[targets.a]\nkind = "server"\nsocket = "/s"\n[targets.a.options]\n'
     'credentials-f = "logins"\n', "targets.a.options.credentials-f: not an option"),
    ('[targets.a]\nkind = "server"\nsocket = "/s"\n[targets.a.options]\n'
     'timeout = "hunter2"\n', "targets.a: argument --timeout: "),
    ('[options]\nstrict = "yes"\n[targets.a]\nkind = "server"\nsocket = "/s"\n',
     "options.strict: expected true or false"),
    ('[options]\ntimeout = -1\n[targets.a]\nkind = "server"\nsocket = "/s"\n',
     "options.timeout: must be positive"),
    ('[options]\nidle_limit = 1e9\n[targets.a]\nkind = "server"\nsocket = "/s"\n',
     "options.idle_limit: at most"),
    ('[targets.a]\nkind = "server"\nsocket = "/s"\n[targets.a.options]\nstrict = true\n',
     "targets.a.options.strict: an option of the whole run: put it in [options]"),
    ('[targets.a]\nkind = "server"\nsocket = "/s"\n[targets.a.options]\ncases = ["x"]\n',
     "targets.a.options.cases: an option of the whole run"),
    ('[targets.a]\nkind = "server"\nsocket = "/s"\n[targets.a.options]\n'
     'expired_user = "oscar"\n', "targets.a.options: --expired-user only for nslcd targets"),
    ('[targets.a]\nkind = "module"\nsource = "."\n[targets.a.options]\nhang_bound = 3\n',
     "targets.a.options.hang_bound: a module target takes no options"),
    ('[targets.a]\nkind = "module"\nreference = true\n[targets.a.options]\ntimeout = 3\n',
     "targets.a.options.timeout: a module target takes no options"),
    ('colour = "blue"\n', "colour: unknown key"),
    ("[targets\n", "not valid TOML"),
])
def test_invalid_project_file_is_one_line_naming_the_key(tmp_path, text, needle, monkeypatch,
                                                        in_process_cli) -> None:
    (tmp_path / "pamconform.toml").write_text(text)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PAMCONFORM_CREDENTIALS", raising=False)
    proc = in_process_cli("run", "--list")
    assert proc.returncode == 2, proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "pamconform.toml" in lines[0], lines
    assert "hunter2" not in proc.stderr and "t0k" not in proc.stderr


def test_pyproject_table_and_explicit_project(tmp_path, logins, sockets) -> None:
    (tmp_path / "pyproject.toml").write_text(
        f'[project]\nname = "x"\n[tool.pamconform.targets.mine]\nkind = "server"\n'
        f'socket = "{sockets["ref"]}"\ncredentials_file = "{logins}"\n')
    proc = pamconform("run", "--list", "--cases", "redir.server.grant-valid", cwd=tmp_path)
    assert proc.returncode == 0 and "1 cases" in proc.stdout, proc.stderr
    other = tmp_path / "elsewhere.toml"
    other.write_text('[targets.a]\nkind = "server"\nsocket = "/s"\nlogin = "x"\n')
    proc = pamconform("run", "--project", str(other), "--list", cwd=tmp_path)
    assert proc.returncode == 2 and "targets.a.login: an inline secret" in proc.stderr


def test_a_broken_pyproject_that_speaks_of_us_is_an_error_not_ignored(
        tmp_path, monkeypatch, in_process_cli) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.pamconform\ntargets = 1\n')
    monkeypatch.chdir(tmp_path)
    proc = in_process_cli("run", "--no-lab", "--list")
    assert proc.returncode == 2, proc.stdout  # not the bundled targets, quietly
    assert "pyproject.toml: not valid TOML" in proc.stderr
    (tmp_path / "pyproject.toml").write_text('[project\nname = "other"\n')  # not ours
    assert in_process_cli("run", "--no-lab", "--list").returncode == 0


def test_a_project_file_that_is_a_fifo_is_refused_at_once(tmp_path, in_process_cli) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    proc = in_process_cli("run", "--project", str(fifo), "--list")
    assert proc.returncode == 2 and "not a regular file" in proc.stderr


def test_this_repository_is_no_project() -> None:
    """Its pyproject.toml has no [tool.pamconform]: `pamconform run` here checks the
    bundled references."""
    from pamconform.core import project

    assert project.find(ROOT) is None
    proc = pamconform("run", "--no-lab", "--list")
    assert proc.returncode == 0 and "redir.server." in proc.stdout and "token." in proc.stdout


def test_the_documented_project_files_are_valid() -> None:
    """The examples of docs/ci.md and README.md read as they say."""
    import re
    import tomllib

    from pamconform.core import project

    for page in (ROOT / "docs" / "ci.md", ROOT / "README.md"):
        blocks = re.findall(r"```toml\n(.*?)```", page.read_text(), re.S)
        assert blocks, page
        for block in blocks:
            parsed = project.parse(tomllib.loads(block), page)
            assert parsed.targets and all(t.kind in project.KINDS for t in parsed.targets)
    (doc,) = re.findall(r"```toml\n(.*?)```", (ROOT / "docs" / "ci.md").read_text(), re.S)
    parsed = project.parse(tomllib.loads(doc), ROOT / "docs" / "ci.md")
    kinds = {t.name: (t.kind, t.reference, t.package, t.credentials_env) for t in parsed.targets}
    assert kinds["reference"][1] and kinds["debian-daemon"][2] == "nslcd"
    assert kinds["our-auth"][3] == "OUR_AUTH_LOGINS"


def test_module_one_name_per_source(tmp_path) -> None:
    src = str(ROOT / "modules" / "pam_redirector")
    proc = pamconform("module", src, src, "--name", "a", "--report", str(tmp_path / "r"))
    assert proc.returncode == 2 and not (tmp_path / "r").exists()
    assert proc.stderr.strip() == ("pamconform: error: module: 1 --name for 2 SRC: give one "
                                   "per SRC, in order, or none")
    proc = pamconform("module", src, src, "--report", str(tmp_path / "r"))
    assert proc.returncode == 2 and "two targets are named" in proc.stderr


def test_project_module_targets_without_the_lab(tmp_path) -> None:
    """Module targets (a source build, the reference module) on two releases: planned and
    checked before any lab starts; with --no-lab listed SKIPPED."""
    (tmp_path / "pamconform.toml").write_text(f"""
distros = ["bookworm", "trixie"]
[targets.ours]
kind = "module"
source = "{ROOT / 'modules' / 'pam_redirector'}"
args = "{{socket}}"
[targets.reference]
kind = "module"
reference = true
distros = ["bookworm"]
""")
    out = tmp_path / "report"
    proc = pamconform("run", "--no-lab", "--cases", "redir.e2e.su-grant", "--report", str(out),
                      "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = _report(out)
    assert [t["name"] for t in data["targets"]] == ["ours@bookworm", "ours@trixie",
                                                    "reference"]
    assert all(c["verdict"] == "SKIPPED" for t in data["targets"] for c in t["cases"])
    (tmp_path / "pamconform.toml").write_text(
        '[targets.ours]\nkind = "module"\nsource = "."\nso = "lib/x.so"\n')
    proc = pamconform("run", "--no-lab", "--list", cwd=tmp_path)
    assert proc.returncode == 2 and "targets.ours: --so 'lib/x.so'" in proc.stderr


def test_a_typed_option_wins_over_the_file_even_at_its_default(tmp_path) -> None:
    """``--timeout 5`` is the parser's default too: typed, it still beats the file's 7."""
    from pamconform.cli.main import build_parser
    from pamconform.cli.project_run import apply_options
    from pamconform.core import project as projectfile

    path = tmp_path / "pamconform.toml"
    path.write_text('[options]\ntimeout = 7\nidle_limit = 3\n'
                    '[targets.a]\nkind = "server"\nsocket = "/s"\n')
    project = projectfile.load(path)
    for argv, expected in ((["run", "--timeout", "5"], (5.0, 3.0)),
                           (["run", "--timeout=5"], (5.0, 3.0)),
                           (["run"], (7.0, 3.0))):
        args = build_parser().parse_args(argv)
        args.command_line = argv
        apply_options(project, args)
        assert (args.timeout, args.idle_limit) == expected, argv


def test_an_abbreviated_option_is_refused_not_beaten_by_the_file(tmp_path) -> None:
    """argparse would take ``--case`` for ``--cases``; the file's options yield only to
    options typed in full, so an abbreviation is an error (else the file's ``cases`` won)."""
    (tmp_path / "pamconform.toml").write_text(
        '[options]\ncases = ["redir.server.g*"]\n'
        '[targets.a]\nkind = "server"\nsocket = "/s"\n')
    env = {"PAMCONFORM_CREDENTIALS": "alice:not-a-secret"}
    proc = pamconform("run", "--case", "redir.server.r*", "--list", cwd=tmp_path, env=env)
    assert proc.returncode == 2 and "unrecognized arguments: --case" in proc.stderr
    proc = pamconform("run", "--cases", "redir.server.r*", "--list", cwd=tmp_path, env=env)
    assert proc.returncode == 0 and "redir.server.r" in proc.stdout, proc.stderr
    assert "redir.server.g" not in proc.stdout


def test_a_typed_distro_wins_over_the_files_even_the_default_one(tmp_path) -> None:
    import argparse

    from pamconform.cli import project_run
    from pamconform.core import project

    data = {"distros": ["bookworm", "trixie"],
            "targets": {"a": {"kind": "module", "reference": True}}}
    loaded = project.parse(data, tmp_path / "pamconform.toml")
    typed = argparse.Namespace(distro="bookworm", command_line=["run", "--distro", "bookworm"])
    default = argparse.Namespace(distro="bookworm", command_line=["run"])
    assert project_run.distros(loaded, typed) == ["bookworm"]
    assert project_run.distros(loaded, default) == ["bookworm", "trixie"]


def test_a_target_left_without_cases_is_said(tmp_path, monkeypatch, in_process_cli) -> None:
    (tmp_path / "pamconform.toml").write_text(
        '[targets.tok]\nkind = "server"\nprotocol = "transient-token"\n'
        'socket = "/run/tok/socket"\noptions = { token_command = "true" }\n'
        '[targets.mod]\nkind = "module"\nreference = true\n')
    monkeypatch.chdir(tmp_path)
    proc = in_process_cli("run", "--no-lab", "--cases", "redir.e2e.*", "--quiet",
                          "--report", str(tmp_path / "r"))
    assert proc.returncode == 0, proc.stderr
    assert "tok: no transient-token server case selected: not checked" in proc.stdout
    listed = in_process_cli("run", "--no-lab", "--list", "--cases", "redir.e2e.*")
    assert "not checked" not in listed.stdout  # a list is only the cases
