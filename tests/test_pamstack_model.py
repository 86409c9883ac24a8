"""The Linux-PAM and OpenPAM models: chain results from module return codes (no lab).

Modules here are ``pam_debug.so auth=<code>`` (and ``cred=`` ...), so each line says
what it returns; :class:`LabModules` reads the codes from the arguments.
"""

from __future__ import annotations

import doctest
import importlib
from collections.abc import Mapping

import pytest

from pamconform.model import codes, openpam
from pamconform.model.linux_pam import LINUX_PAM_1_5, LINUX_PAM_GIT, Transaction, run
from pamconform.model.modules import STATE_CODES, LabModules, debug_code, socket_arg
from pamconform.model.parser import Layout, load_text

MODULES = LabModules(sockets={"/run/grant": 0, "/run/deny": 7})
CONFDIR = Layout.confdir("/c")


def result(text: str, steps: tuple[str, ...] = ("authenticate",), *,
           files: Mapping[str, str] | None = None, dialect=LINUX_PAM_1_5) -> list[str]:
    cfg = load_text(text, files=files, layout=CONFDIR)
    return [name for _step, name in run(cfg, MODULES, steps, keep_going=True,
                                        dialect=dialect).results()]


def d(code: str, control: str = "required", more: str = "") -> str:
    return f"auth {control} pam_debug.so auth={code} {more}\n"


# --------------------------------------------------------------------------- flags


@pytest.mark.parametrize(("stack", "expected"), [
    (d("success"), "PAM_SUCCESS"),
    (d("auth_err") + d("success"), "PAM_AUTH_ERR"),
    (d("user_unknown") + d("auth_err"), "PAM_USER_UNKNOWN"),  # the first failure counts
    (d("success", "requisite") + d("maxtries", "requisite") + d("auth_err"), "PAM_MAXTRIES"),
    (d("success", "sufficient") + d("auth_err"), "PAM_SUCCESS"),
    (d("auth_err") + d("success", "sufficient"), "PAM_AUTH_ERR"),  # no done after a failure
    (d("auth_err", "sufficient") + d("success"), "PAM_SUCCESS"),
    (d("auth_err", "optional") + d("success"), "PAM_SUCCESS"),
    (d("auth_err", "optional"), "PAM_PERM_DENIED"),  # nothing set a result
    (d("ignore") + d("ignore", "optional"), "PAM_PERM_DENIED"),
    (d("new_authtok_reqd", "optional") + d("success"), "PAM_NEW_AUTHTOK_REQD"),
    (d("success") + d("new_authtok_reqd"), "PAM_NEW_AUTHTOK_REQD"),  # ok replaces a success
    (d("new_authtok_reqd") + d("success"), "PAM_NEW_AUTHTOK_REQD"),  # but nothing replaces it
])
def test_keyword_controls(stack: str, expected: str) -> None:
    assert result(stack) == [expected]


def test_empty_chain_is_perm_denied_for_every_facility() -> None:
    steps = ("authenticate", "setcred", "acct_mgmt", "open_session", "close_session",
             "chauthtok")
    assert result("session required pam_debug.so open_session=ignore close_session=ignore\n",
                  steps) == [
        "PAM_PERM_DENIED"] * 6


@pytest.mark.parametrize(("stack", "expected"), [
    (d("ignore", "[ignore=ok]"), "PAM_IGNORE"),  # a recorded PAM_IGNORE
    (d("ignore", "[ignore=bad]"), "PAM_PERM_DENIED"),  # recorded as PAM_PERM_DENIED
    (d("success", "[success=bad default=ok]"), "PAM_PERM_DENIED"),  # sanity check
    (d("success", "[success=die]") + d("success"), "PAM_PERM_DENIED"),
    (d("auth_err", "[default=ok]") + d("success"), "PAM_AUTH_ERR"),
    (d("success") + d("auth_err", "[default=reset]"), "PAM_PERM_DENIED"),
    (d("success") + d("auth_err", "[default=reset]") + d("success", "optional"), "PAM_SUCCESS"),
    (d("success", "[SUCCESS=ok]"), "PAM_PERM_DENIED"),  # syntax error: all bad
    (d("success", "[success=done]") + d("auth_err"), "PAM_SUCCESS"),
    (d("auth_err", "[default=ok]") + d("success", "[success=done]") + d("perm_denied"),
     "PAM_AUTH_ERR"),  # done stops on a positive impression whatever its status
])
def test_bracket_actions(stack: str, expected: str) -> None:
    assert result(stack) == [expected]


# --------------------------------------------------------------------------- jumps


def test_jump_skips_lines_and_records_nothing() -> None:
    stack = d("success", "[success=1 default=ignore]") + d("auth_err") + d("success")
    assert result(stack) == ["PAM_SUCCESS"]
    assert result(d("success", "[success=1 default=bad]") + d("auth_err")) == ["PAM_PERM_DENIED"]


def test_jump_past_the_end_is_an_error() -> None:
    assert result(d("success", "[success=2]") + d("success")) == ["PAM_PERM_DENIED"]
    assert result(d("auth_err") + d("success", "[success=2]") + d("success")) == [
        "PAM_PERM_DENIED"]  # the error overwrites the first failure's code


def test_jump_counts_a_substack_as_one_line() -> None:
    files = {"/s": d("auth_err") + d("auth_err")}
    stack = d("success", "[success=1 default=die]") + "auth substack /s\n" + d("success")
    assert result(stack, files=files) == ["PAM_SUCCESS"]
    assert result(d("success", "[success=2 default=die]") + "auth substack /s\n" + d("success"),
                  files=files) == ["PAM_PERM_DENIED"]


def test_include_counts_its_lines_for_jumps() -> None:
    files = {"/i": d("auth_err") + d("auth_err")}
    stack = d("success", "[success=2 default=die]") + "auth include /i\n" + d("success")
    assert result(stack, files=files) == ["PAM_SUCCESS"]


def test_jump_inside_a_substack_cannot_leave_it() -> None:
    files = {"/s": d("success", "[success=1]")}
    assert result("auth substack /s\n" + d("success"), files=files) == ["PAM_PERM_DENIED"]


# --------------------------------------------------------------------------- scoping


def test_done_and_die_in_a_substack_end_only_the_substack() -> None:
    files = {"/s": d("success", "sufficient"), "/r": d("auth_err", "requisite")}
    assert result("auth substack /s\n" + d("auth_err"), files=files) == ["PAM_AUTH_ERR"]
    assert result("auth include /s\n" + d("auth_err"), files=files) == ["PAM_SUCCESS"]
    assert result("auth substack /r\n" + d("success", "sufficient"), files=files) == [
        "PAM_AUTH_ERR"]


def test_reset_in_a_substack_goes_back_to_its_start() -> None:
    files = {"/s": d("auth_err") + d("success", "[default=reset]")}
    assert result(d("success") + "auth substack /s\n", files=files) == ["PAM_SUCCESS"]


def test_missing_module_and_broken_line() -> None:
    assert result("auth required pam_gone.so\n") == ["PAM_MODULE_UNKNOWN"]
    assert result("-auth optional pam_gone.so\n" + d("success")) == ["PAM_SUCCESS"]
    assert result("auht optional pam_permit.so\n" + d("success")) == ["PAM_SUCCESS"]
    assert result("auht required pam_permit.so\n" + d("success")) == ["PAM_PERM_DENIED"]
    assert result("auth include /nope\n" + d("success")) == ["PAM_PERM_DENIED"]


def test_incomplete_returns_at_once() -> None:
    assert result(d("incomplete") + d("auth_err")) == ["PAM_INCOMPLETE"]


def test_pam_start_failures() -> None:
    cfg = load_text("auth required pam_permit.so \\", layout=CONFDIR)
    assert run(cfg, MODULES).start == codes.ABORT
    cfg = load_text("auth include /c/svc\n", layout=CONFDIR)
    assert run(cfg, MODULES).crash


# --------------------------------------------------------------------------- frozen chains


def test_setcred_follows_the_codes_authenticate_got() -> None:
    stack = "auth [success=ok default=ignore] pam_debug.so auth=auth_err cred=success\n"
    assert result(stack, ("authenticate", "setcred")) == ["PAM_PERM_DENIED"] * 2
    stack = d("success", more="cred=ignore")
    assert result(stack, ("authenticate", "setcred")) == ["PAM_SUCCESS", "PAM_PERM_DENIED"]
    assert result(stack, ("setcred",)) == ["PAM_PERM_DENIED"]  # not frozen: IGNORE ignored


def test_frozen_jump_dialects() -> None:
    stack = (d("success", "[success=1 default=ok]", "cred=auth_err") + d("auth_err")
             + d("success", more="cred=cred_err"))
    steps = ("authenticate", "setcred")
    assert result(stack, steps) == ["PAM_SUCCESS", "PAM_CRED_ERR"]
    assert result(stack, steps, dialect=LINUX_PAM_GIT) == ["PAM_SUCCESS", "PAM_AUTH_ERR"]


def test_close_session_follows_open_session() -> None:
    stack = "session [success=ok default=ignore] pam_debug.so open_session=session_err\n"
    assert result(stack, ("open_session", "close_session")) == ["PAM_PERM_DENIED"] * 2


def test_chauthtok_runs_a_preliminary_pass_first() -> None:
    stack = ("password required pam_permit.so\n"
             "password required pam_debug.so prechauthtok=ignore chauthtok=auth_err\n")
    assert result(stack, ("chauthtok",)) == ["PAM_AUTH_ERR"]
    stack = "password required pam_debug.so prechauthtok=try_again chauthtok=success\n"
    assert result(stack, ("chauthtok",)) == ["PAM_TRY_AGAIN"]


def test_other_fallback_per_facility() -> None:
    files = {"/c/other": d("maxtries") + "account required pam_debug.so acct=acct_expired\n"}
    assert result("account required pam_permit.so\n", ("authenticate", "acct_mgmt"),
                  files=files) == ["PAM_MAXTRIES", "PAM_SUCCESS"]


# --------------------------------------------------------------------------- trace


def test_trace_shows_ran_and_skipped_lines() -> None:
    cfg = load_text(d("success", "sufficient") + d("auth_err"), layout=CONFDIR)
    out = Transaction(cfg, MODULES).run("authenticate")
    assert [(s.where, s.ran, s.action) for s in out.steps] == [
        ("svc:1", True, "done"), ("svc:2", False, "skip")]
    assert "not reached (done at svc:1)" in out.render()
    assert out.steps[0].as_dict()["returned"] == "PAM_SUCCESS"


def test_trace_notes_an_empty_verdict() -> None:
    cfg = load_text(d("ignore"), layout=CONFDIR)
    out = Transaction(cfg, MODULES).run("authenticate")
    assert any("no module set a result" in n for n in out.notes)


# --------------------------------------------------------------------------- modules


def test_module_table() -> None:
    assert debug_code(["cred=abort", "auth=ignore"], "authenticate") == codes.IGNORE
    assert debug_code(["auth=nonsense"], "authenticate") == codes.SUCCESS
    assert socket_arg(["/run/s", "timeout=0.5", "debug"]) == "/run/s"
    assert socket_arg(["relative"]) is None and socket_arg(["/a", "/b"]) is None
    assert socket_arg(["/a", "bogus=1"]) is None
    assert result("auth required pam_redirector.so /run/deny\n") == ["PAM_AUTH_ERR"]
    assert result("auth required pam_redirector.so\n") == ["PAM_SERVICE_ERR"]
    assert STATE_CODES["down"] == codes.AUTHINFO_UNAVAIL


# --------------------------------------------------------------------------- OpenPAM


def _openpam(text: str, primitive: str = "authenticate") -> str:
    policy = openpam.parse("svc", {"svc": text})
    return openpam.evaluate(policy, primitive,
                            lambda rule, fn: debug_code(rule.args, fn)).name


@pytest.mark.parametrize(("stack", "expected"), [
    (d("success"), "PAM_SUCCESS"),
    (d("ignore") + d("ignore", "optional"), "PAM_SYSTEM_ERR"),  # all ignored
    ("", "PAM_SYSTEM_ERR"),  # empty chain
    (d("auth_err", "optional"), "PAM_SYSTEM_ERR"),
    (d("auth_err", "optional") + d("success"), "PAM_SUCCESS"),
    (d("success", "binding") + d("auth_err"), "PAM_SUCCESS"),
    (d("auth_err", "binding") + d("success"), "PAM_AUTH_ERR"),
    (d("auth_err") + d("success", "sufficient"), "PAM_AUTH_ERR"),
    (d("user_unknown", "optional") + d("auth_err", "requisite") + d("success"),
     "PAM_USER_UNKNOWN"),  # requisite stops with the first failure's code
    (d("user_unknown", "optional") + d("auth_err") + d("success"), "PAM_AUTH_ERR"),
    (d("new_authtok_reqd", "optional") + d("success"), "PAM_NEW_AUTHTOK_REQD"),
])
def test_openpam_rules(stack: str, expected: str) -> None:
    assert _openpam(stack) == expected


def test_openpam_setcred_treats_sufficient_as_optional() -> None:
    stack = d("success", "sufficient", "cred=success") + d("auth_err", more="cred=cred_err")
    assert _openpam(stack, "authenticate") == "PAM_SUCCESS"
    assert _openpam(stack, "setcred") == "PAM_CRED_ERR"


def test_openpam_rejects_linux_pam_syntax_and_includes_services() -> None:
    assert _openpam(d("success", "[success=ok default=bad]")) == "PAM_SYSTEM_ERR"
    assert openpam.parse("svc", {"svc": "auth substack x\n"}).error
    policy = openpam.parse("svc", {"svc": "auth include common\n", "common": d("success")})
    assert [r.module for r in policy.chains["auth"]] == ["pam_debug.so"]


def test_linux_pam_and_openpam_differ_on_an_all_ignore_chain() -> None:
    stack = d("ignore") + d("auth_err", "optional")
    assert result(stack) == ["PAM_PERM_DENIED"]
    assert _openpam(stack) == "PAM_SYSTEM_ERR"


@pytest.mark.parametrize("name", ["codes", "parser", "linux_pam", "modules", "openpam",
                                  "__init__"])
def test_doctests(name: str) -> None:
    module = importlib.import_module(f"pamconform.model.{name}".removesuffix(".__init__"))
    failures, _tests = doctest.testmod(module)
    assert failures == 0


def test_saved_regressions_hold_in_the_model() -> None:
    from pathlib import Path

    from pamconform.lab.stack_differential import load_regressions

    directory = Path(__file__).resolve().parent / "fixtures" / "chain_regressions"
    cases = load_regressions(directory)
    assert len(cases) >= 7
    assert [c.label for c in cases if not c.model_matches("/tmp/pc-chain/reg")] == []
