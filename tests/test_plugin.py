"""The pytest plugin: the suites as plain pytest items, and cases of one's own (its fixtures)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pamconform.lab import gallery
from pamconform.lab.localserver import LocalServer, reference_command

ROOT = Path(__file__).resolve().parents[1]
LOGINS = [("alice", "alice-auth-pw"), ("bob", "bob-auth-pw")]
#: A wrong password unlike any word of the suites' messages (so only it is redacted).
WRONG = "Qx7vK2pL9wZ"


def _pytest(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None,
            autoload: bool | None = None) -> subprocess.CompletedProcess[str]:
    """``pytest ARGS`` in ``cwd``. In this checkout its conftest loads the plugin, so other
    installed plugins are not loaded (their start-up costs a second and a half of CPU per
    run); in a repository of one's own (or with ``autoload``) the entry point loads it,
    as for a user."""
    environ = {k: v for k, v in os.environ.items() if k != "PAMCONFORM_CREDENTIALS"}
    if autoload is None:
        autoload = cwd != ROOT
    if not autoload:
        environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        capture_output=True, text=True, timeout=300, check=False, cwd=cwd,
        env={**environ, **(env or {})},
    )


@pytest.fixture(scope="module")
def reference() -> Iterator[Path]:
    """The reference redirector server's socket."""
    with LocalServer(reference_command(["--idle-timeout", "1"]), LOGINS) as srv:
        yield srv.socket


def test_without_a_target_every_case_skips() -> None:
    proc = _pytest("suites/redirector_server", "--co")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "redir.server.polarity" in proc.stdout
    proc = _pytest("suites/redirector_server", "-k", "polarity or grant-valid", "-rs")
    assert proc.returncode == 0
    assert "2 skipped" in proc.stdout and "no target" in proc.stdout


def test_reference_server_passes_as_pytest(reference: Path) -> None:
    proc = _pytest("suites/redirector_server", "--server", str(reference),
                   "--credentials", "alice:alice-auth-pw", "--idle-limit", "4",
                   "-k", "not concurrent")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert " passed" in proc.stdout and "failed" not in proc.stdout


def test_items_are_named_by_their_target(reference: Path) -> None:
    proc = _pytest("suites/redirector_server", "--server", str(reference),
                   "--credentials", "alice:alice-auth-pw", "-k", "polarity", "-vv")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert f"redir.server.polarity[server://{reference}] PASSED" in proc.stdout


def test_a_failure_shows_requirement_and_wire_log() -> None:
    """A server that grants a prefix of a password it granted (the login check's grant
    teaches it alice's): the truncated-password case FAILs with its evidence."""
    user, password = LOGINS[0]
    with LocalServer(gallery.commands()["prefix-match"], LOGINS) as srv:
        proc = _pytest("suites/redirector_server", "--server", str(srv.socket),
                       "--credentials", f"{user}:{password}", "-k", "deny-truncated-password")
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr
    assert "FAIL redir.server.deny-truncated-password [R-S2 MUST]" in proc.stdout
    assert "requirement: " in proc.stdout
    marker = f"\u2039password of {user}, {len(password)} bytes\u203a"
    assert f"send {user}\\n{marker}[:{len(password) - 1}]\\n" in proc.stdout
    assert password not in proc.stdout + proc.stderr


def test_logins_from_a_file_or_the_environment(reference: Path, short_dir: Path) -> None:
    logins = short_dir / "logins"
    logins.write_text("# test logins\nalice:alice-auth-pw\n")
    logins.chmod(0o600)
    proc = _pytest("suites/redirector_server", "--server", str(reference),
                   "--credentials-file", str(logins), "-k", "grant-valid")
    assert proc.returncode == 0 and "1 passed" in proc.stdout, proc.stdout[-2000:] + proc.stderr
    proc = _pytest("suites/redirector_server", "--server", str(reference), "-k", "grant-valid",
                   env={"PAMCONFORM_CREDENTIALS": "bob:bob-auth-pw"})
    assert proc.returncode == 0 and "1 passed" in proc.stdout, proc.stdout[-2000:] + proc.stderr
    logins.chmod(0o644)
    proc = _pytest("suites/redirector_server", "--server", str(reference),
                   "--credentials-file", str(logins), "-k", "grant-valid")
    assert proc.returncode == 4 and "chmod 600" in proc.stderr


def test_bad_target_is_a_usage_error() -> None:
    proc = _pytest("suites/redirector_server", "--server", "/tmp/pc-none.sock",
                   "--credentials", "a:bbbb", "-k", "polarity")
    assert proc.returncode == 4  # pytest's usage error
    assert "no such socket" in proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


def test_a_login_the_server_refuses_is_one_usage_error(reference: Path) -> None:
    """As ``pamconform server``: checked once before any case, not a FAIL of each."""
    proc = _pytest("suites/redirector_server", "--server", str(reference),
                   "--credentials", f"alice:{WRONG}", "-k", "polarity or grant")
    assert proc.returncode == 4, proc.stdout[-2000:]
    assert "refused alice's login" in proc.stderr and "failed" not in proc.stdout
    assert WRONG not in proc.stdout + proc.stderr


def test_another_projects_suites_folder_is_not_collected(tmp_path: Path) -> None:
    """Only the bundled suites are suite files: a folder called ``suites`` in a project
    of one's own holds that project's files, which pytest collects as usual."""
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "helper.py").write_text("import no_such_module_here\n")
    (tmp_path / "test_own.py").write_text("def test_own():\n    assert True\n")
    proc = _pytest(cwd=tmp_path)
    assert proc.returncode == 0 and "1 passed" in proc.stdout, proc.stdout + proc.stderr


def test_no_login_is_a_usage_error(reference: Path) -> None:
    proc = _pytest("suites/redirector_server", "--server", str(reference), "-k", "polarity")
    assert proc.returncode == 4
    assert "PAMCONFORM_CREDENTIALS" in proc.stderr


@pytest.mark.parametrize(("args", "says"), [
    (["--protocol", "no-such"], "unknown protocol 'no-such'"),
    (["--token", "x" * 20], "--token-command and --token need --protocol"),
])
def test_protocol_input_is_checked(reference: Path, args: list[str], says: str) -> None:
    proc = _pytest("suites/redirector_server", "--server", str(reference),
                   "--credentials", "alice:alice-auth-pw", "-k", "polarity", *args)
    assert proc.returncode == 4, proc.stdout[-2000:] + proc.stderr
    assert says in proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


def test_several_protocols_none_the_default_is_a_usage_error(reference: Path) -> None:
    proc = _pytest("suites/token_server", "suites/nslcd_server", "--server", str(reference),
                   "-k", "accept-exact-token or deny-empty-password")
    assert proc.returncode == 4, proc.stdout[-2000:] + proc.stderr
    assert "several protocols (nslcd, transient-token): choose one with --protocol" in proc.stderr


def test_a_case_of_another_kind_skips_with_the_reason(reference: Path) -> None:
    """A module or stack case is never handed a server target."""
    proc = _pytest("suites/redirector_module_e2e", "suites/pam_chain", "--server", str(reference),
                   "--credentials", "alice:alice-auth-pw", "-rs")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "failed" not in proc.stdout and "error" not in proc.stdout.lower()
    assert f"a module case needs --module SRC; the targets are server://{reference}" in proc.stdout
    assert "a stack case: the pytest plugin has server and module targets only" in proc.stdout


@pytest.mark.parametrize("protocol", [["--protocol", "redirector"], []])
def test_a_case_of_another_protocol_skips(reference: Path, protocol: list[str]) -> None:
    """Given or by default (the registry's default among the collected), the targets speak
    one protocol; the other protocols' cases skip."""
    proc = _pytest("suites/redirector_server", "suites/token_server", "--server", str(reference),
                   "--credentials", "alice:alice-auth-pw", *protocol,
                   "-k", "polarity or accept-exact-token", "-rs")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "1 passed" in proc.stdout
    assert "a transient-token case; the server targets speak redirector" in proc.stdout


def test_the_plugin_is_registered_once() -> None:
    """The entry point and the checkout's conftest name the same plugin: pytest loads it once,
    and a run without entry points loads it through ``-p``."""
    no_autoload = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    for env, extra in (({}, []), (no_autoload, ["-p", "pamconform.plugin"])):
        proc = _pytest("suites/redirector_server", "--co", "--trace-config", *extra, env=env,
                       autoload=True)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
        assert proc.stdout.count("PLUGIN registered: <module 'pamconform.plugin'") == 1


# ---- a case of one's own: the example of docs/custom-cases.md -------------------------------
def _doc_files() -> dict[str, str]:
    """The files of the guide's example: code blocks whose first line is ``# NAME.py``."""
    text = (ROOT / "docs" / "custom-cases.md").read_text()
    files = {}
    for block in re.findall(r"```python\n(.*?)```", text, re.S):
        first, _, rest = block.partition("\n")
        name = re.fullmatch(r"# (\w+\.py)", first)
        if name:
            files[name.group(1)] = rest
    return files


@pytest.fixture
def site_repo(tmp_path: Path) -> Path:
    """A repository of one's own holding the guide's example case."""
    files = _doc_files()
    assert set(files) == {"conftest.py", "test_site_policy.py", "test_site_module.py"}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def test_custom_case_passes_on_the_reference_server(site_repo: Path, reference: Path) -> None:
    proc = _pytest("--server", str(reference), "-vv", cwd=site_repo,
                   env={"PAMCONFORM_CREDENTIALS": "alice:alice-auth-pw"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    assert f"test_retired_account_denied[server://{reference}] PASSED" in proc.stdout


def test_custom_case_fails_a_faulty_server(site_repo: Path) -> None:
    """A server that, after a grant (the login check's), grants the next request it would
    deny: the retired account's."""
    with LocalServer(gallery.commands()["sticky-session"], LOGINS) as srv:
        proc = _pytest("--server", str(srv.socket), "-k", "retired", cwd=site_repo,
                       env={"PAMCONFORM_CREDENTIALS": "alice:alice-auth-pw"})
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert "FAIL site.server.retired-account-denied [SITE-1 MUST]" in proc.stdout
    assert "requirement: The server denies the retired account svc-backup" in proc.stdout
    assert "expected the retired account to be denied" in proc.stdout
    assert "\u2039password of svc-backup, 14 bytes\u203a" in proc.stdout
    assert "backup-2019-pw" not in proc.stdout


def test_custom_case_without_a_target_skips(site_repo: Path) -> None:
    proc = _pytest("-rs", cwd=site_repo)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "2 skipped" in proc.stdout and "no target" in proc.stdout


def test_custom_case_is_checked_when_collected(site_repo: Path, reference: Path) -> None:
    """A mark missing a field, or an id a bundled case holds, is a clean collection error."""
    case = site_repo / "test_site_policy.py"
    case.write_text(case.read_text().replace('    kind="server",\n', ""))
    proc = _pytest("--server", str(reference), cwd=site_repo,
                   env={"PAMCONFORM_CREDENTIALS": "alice:alice-auth-pw"})
    assert proc.returncode != 0
    assert "(missing: kind)" in proc.stdout and "Traceback" not in proc.stdout


def test_a_server_case_of_ones_own_skips_for_a_module_target(site_repo: Path) -> None:
    proc = _pytest(f"--module={site_repo}", "-k", "retired", "-rs", cwd=site_repo)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    assert "a server case needs --server SOCKET; the targets are module://" in proc.stdout


def test_custom_module_case_in_the_lab(site_repo: Path, docker_client: object) -> None:
    """The guide's module case, against the reference module built in a lab container."""
    module = ROOT / "modules" / "pam_redirector"
    proc = _pytest(f"--module={module}", "-k", "su_grant", "-vv", cwd=site_repo)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    assert f"test_su_grant[module://{module}] PASSED" in proc.stdout


def test_module_cases_skip_without_an_engine() -> None:
    """No container engine: each module item skips saying so (the engine is asked once)."""
    module = ROOT / "modules" / "pam_redirector"
    proc = _pytest("suites/redirector_module_e2e", f"--module={module}",
                   "-k", "ssh-grant or su-grant", "-rs",
                   env={"DOCKER_HOST": "unix:///tmp/pc-no-engine.sock"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    assert "2 skipped" in proc.stdout and "no container engine for the lab" in proc.stdout


@pytest.mark.parametrize("verdict", ["NON-STRICT", "SKIPPED"])
def test_non_strict_and_skip_messages_are_redacted(verdict: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Not only FAIL and ERROR: a NON-STRICT warning and a skip reason reach the pytest
    output too, so a password in them becomes a marker."""
    from pamconform import plugin
    from pamconform.core import redaction
    from pamconform.core.registry import Case
    from pamconform.core.runner import CaseResult
    from pamconform.core.verdicts import Severity, Verdict

    red = redaction.Redactor()
    red.add_login(b"bob", b"Hq4Ry8TzWn2Kp6Vb3Xs9")
    monkeypatch.setattr(redaction, "_CURRENT", red)
    case = Case("x.y", "R-X", Severity.SHOULD, "t", "r", "redirector", "server",
                lambda ctx: None, "s", ())
    result = CaseResult(case, Verdict(verdict),
                        "password b'Hq4Ry8TzWn2Kp6Vb3Xs9\\x00junk' accepted", 0.1)

    class Item:
        def __init__(self) -> None:
            self.user_properties: list[tuple[str, str]] = []

    with pytest.warns(plugin.NonStrictWarning) if verdict == "NON-STRICT" else \
            pytest.raises(pytest.skip.Exception) as caught:
        plugin.conclude(Item(), result)  # type: ignore[arg-type]
    text = str(caught.list[0].message if verdict == "NON-STRICT" else caught.value)
    assert "Hq4Ry8" not in text and "password of bob" in text
