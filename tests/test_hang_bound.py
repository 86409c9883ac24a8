"""R-M2's hang bound: it follows the module's declared timeout, with a margin, and every
hang case reports the measured time.

The unit tests need no engine; the lab tests check that the reference module passes
every hang case configured as its README says (default ``timeout``), and that a module
that really hangs is still caught ("hung").
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from pamconform.cli.main import main
from pamconform.core import resources
from pamconform.core.context import CaseContext
from pamconform.core.outcome import Fail
from pamconform.core.runner import TargetResult
from pamconform.drivers import login_checks as e2e_checks
from pamconform.drivers.direct import Attempt
from pamconform.drivers.login import LoginOutcome, LoginResult
from pamconform.lab.module_target import HANG_MARGIN, ModuleSpec, default_hang_bound
from pamconform.protocols.redirector.direct_steps import expect_bounded_denial as direct_bounded

MODULES = {"redirector": ("pam_redirector", "pam_redirector.c"),
           "transient-token": ("pam_transient_token", "pam_transient_token.c")}


@pytest.mark.parametrize("protocol", sorted(MODULES))
def test_default_bound_is_the_reference_timeout_plus_the_margin(protocol: str) -> None:
    directory, source = MODULES[protocol]
    c = (resources.modules_dir() / directory / source).read_text()
    declared = float(re.search(r"#define\s+DEFAULT_TIMEOUT\s+([0-9.]+)", c).group(1))  # type: ignore[union-attr]
    readme = (resources.modules_dir() / directory / "README.md").read_text()
    assert f"default {declared:g}" in readme
    assert default_hang_bound(protocol) == declared + HANG_MARGIN
    assert ModuleSpec(Path("."), protocol=protocol).bound == declared + HANG_MARGIN
    assert ModuleSpec(Path("."), protocol=protocol, hang_bound=4.5).bound == 4.5


def _capture_module_runs(monkeypatch: pytest.MonkeyPatch) -> list[ModuleSpec]:
    from pamconform.lab import module_run

    specs: list[ModuleSpec] = []

    def fake_run_module(spec: ModuleSpec, cases: Any, *, name: str, **_kw: Any) -> TargetResult:
        specs.append(spec)
        return TargetResult(name=name, kind="module", protocol=spec.protocol)

    monkeypatch.setattr(module_run, "run_module", fake_run_module)
    return specs


@pytest.mark.parametrize(("extra", "bound"), [([], 12.0), (["--hang-bound", "7.5"], 7.5)])
def test_module_command_takes_the_hang_bound(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                             extra: list[str], bound: float) -> None:
    specs = _capture_module_runs(monkeypatch)
    rc = main(["module", str(resources.modules_dir() / "pam_redirector"), "--quiet",
               "--report", str(tmp_path / "r"), *extra])
    assert rc == 0
    assert [s.bound for s in specs] == [bound]


@pytest.mark.parametrize("value", ["nan", "inf", "0", "-1", "soon"])
@pytest.mark.parametrize("command", ["module", "run"])
def test_bad_hang_bound_is_exit_2(command: str, value: str,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    rc = main([command, "--hang-bound", value, "--list"])
    err = capsys.readouterr().err
    assert rc == 2 and "--hang-bound" in err and err.count("\n") == 1, err


# ---- the checks, on recorded outcomes ------------------------------------------------
class _Target:
    hang_bound = 12.0
    login_timeout = 20.0


def _login(outcome: LoginOutcome, seconds: float) -> LoginResult:
    return LoginResult(outcome, seconds, "")


def test_e2e_denial_within_bound_plus_login_path_passes_with_its_time() -> None:
    ctx = CaseContext(_Target())
    e2e_checks.expect_bounded_denial(ctx, _login(LoginOutcome.DENIED, 11.3), "hung", 1.3)
    assert ctx.notes == ["denied after 11.3 s; bound 12.0 s + 1.3 s the login path takes to "
                         "deny at once"]
    assert ctx.extra["hang"] == {"outcome": "DENIED", "seconds": 11.3, "bound_s": 12.0,
                                 "login_path_s": 1.3}


@pytest.mark.parametrize(("outcome", "seconds", "got"), [
    (LoginOutcome.DENIED, 14.0, "denied only after 14.0 s"),
    (LoginOutcome.HUNG, 18.3, "no verdict after 18.3 s: the login hung"),
    (LoginOutcome.GRANTED, 11.0, "GRANTED"),
])
def test_e2e_late_hung_or_granted_fails_with_its_time(outcome: LoginOutcome, seconds: float,
                                                      got: str) -> None:
    ctx = CaseContext(_Target())
    with pytest.raises(Fail) as exc:
        e2e_checks.expect_bounded_denial(ctx, _login(outcome, seconds), "hung", 1.3)
    assert got in str(exc.value)
    assert ctx.extra["hang"]["seconds"] == seconds


def test_e2e_hang_logins_are_watched_past_the_bound() -> None:
    t: Any = _Target()
    assert e2e_checks.hang_watch(t, 1.3) == 20.0  # the login timeout, when longer
    t.hang_bound = 60.0
    assert e2e_checks.hang_watch(t, 1.3) == 60.0 + 1.3 + e2e_checks.HANG_GRACE_S


def test_direct_denial_reports_its_time() -> None:
    ctx = CaseContext(_Target())
    attempt = Attempt({"status": "ran", "wall_ms": 10004.0, "result": {"steps": [
        {"step": "authenticate", "name": "PAM_AUTHINFO_UNAVAIL"}]}})
    direct_bounded(ctx, attempt, "a login while the server silence", 12.0)
    assert ctx.notes == ["PAM_AUTHINFO_UNAVAIL after 10.0 s; bound 12.0 s"]


def test_direct_hung_fails_as_hung() -> None:
    ctx = CaseContext(_Target())
    with pytest.raises(Fail) as exc:
        direct_bounded(ctx, Attempt({"status": "hung", "wall_ms": 12001.0}), "x", 12.0)
    assert "hung" in str(exc.value) and "12.0 s" in str(exc.value)
    assert ctx.extra["hang"]["status"] == "hung"


# ---- the lab -----------------------------------------------------------------------------
FAULTY = Path(__file__).resolve().parent / "fixtures" / "faulty_modules"
HANG_CASES = ["redir.e2e.*-server-hung-denied", "redir.module.server-silence",
              "redir.module.server-accept-no-read", "redir.module.server-delay-over-timeout",
              "redir.module.server-backlog-full"]


def _run_hang_cases(spec: ModuleSpec, cases: list[str]) -> TargetResult:
    from pamconform.core.runner import select
    from pamconform.lab.module_run import module_cases, run_module

    return run_module(spec, select(module_cases("redirector"), cases, []), name="hang",
                      say=lambda _line: None)


@pytest.mark.docker
def test_reference_module_as_its_readme_says_passes_every_hang_case(
        docker_client: object) -> None:
    """``auth required pam_redirector.so SOCKET``: the module's own 10 s timeout."""
    result = _run_hang_cases(ModuleSpec(resources.modules_dir() / "pam_redirector"),
                             HANG_CASES)
    assert len(result.results) == 6
    assert {r.case.id: r.message for r in result.results if r.verdict.name != "PASS"} == {}
    for r in result.results:
        hang = r.evidence["hang"]
        limit = hang["bound_s"] + hang.get("login_path_s", 0.0)
        assert hang["bound_s"] == 12.0 and 9.9 < hang["seconds"] <= limit, (r.case.id, hang)
        assert any(f"bound {hang['bound_s']:.1f} s" in n for n in r.evidence["notes"])


@pytest.mark.docker
def test_a_module_that_really_hangs_is_still_caught(docker_client: object) -> None:
    spec = ModuleSpec(FAULTY, build="make clean >/dev/null; make FAULT=no_read_timeout",
                      so="pam_faulty.so")
    result = _run_hang_cases(spec, ["redir.e2e.ssh-server-hung-denied",
                                    "redir.module.server-silence"])
    assert [r.verdict.name for r in result.results] == ["FAIL", "FAIL"]
    assert all("hung" in r.message for r in result.results), [r.message for r in result.results]
