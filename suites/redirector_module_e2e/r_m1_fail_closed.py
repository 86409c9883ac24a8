"""R-M1 end to end: through real sshd and su, only a valid grant lets a user in."""

from functools import partial

from pamconform.core.registry import case_factory
from pamconform.core.verdicts import Severity
from pamconform.drivers.login_checks import expect_denied, expect_granted
from pamconform.lab.module_target import AUTH_PASSWORDS, UNIX_PASSWORDS
from pamconform.protocols.redirector.e2e_steps import expect_alive, login, target

case = case_factory(protocol="redirector", kind="module", exclusive="lab-server")

VIAS = [
    ("ssh", "ssh keyboard-interactive"),
    ("ssh-password", "ssh password authentication"),
    ("su", "su run by an unprivileged user"),
]


def _grant(via, ctx):
    for user, password in AUTH_PASSWORDS.items():
        expect_granted(login(ctx, via, user, password, "valid login"), f"{user}'s valid login")


def _wrong_password(via, ctx):
    result = login(ctx, via, "alice", "not-" + AUTH_PASSWORDS["alice"], "wrong password")
    expect_denied(result, "a wrong password")
    expect_alive(ctx, "after a wrong password")


for _via, _how in VIAS:
    case(
        f"redir.e2e.{_via}-grant",
        rule="R-M1",
        severity=Severity.MUST,
        title=f"Valid logins are granted ({_how})",
        requirement=f"With the reference server up, {_how} with the auth-server password "
        "reaches a shell as the user (a module that never grants is not 'closed', it is broken).",
    )(partial(_grant, _via))
    case(
        f"redir.e2e.{_via}-wrong-password-denied",
        rule="R-M1",
        severity=Severity.MUST,
        title=f"A wrong password is denied ({_how})",
        requirement=f"{_how.capitalize()} with a wrong password is denied.",
    )(partial(_wrong_password, _via))


@case(
    "redir.e2e.unix-password-denied",
    rule="R-M1",
    severity=Severity.MUST,
    title="The Unix password does not pass for the auth password",
    requirement="An ssh login with the user's Unix password (which the auth server does not "
    "know) is denied: the module, not pam_unix, decides.",
)
def unix_password_denied(ctx):
    result = login(ctx, "ssh", "alice", UNIX_PASSWORDS["alice"], "Unix password")
    expect_denied(result, "alice's Unix password")


@case(
    "redir.e2e.unknown-user-denied",
    rule="R-M1",
    severity=Severity.MUST,
    title="A user the server does not know is denied",
    requirement="A system user with no account on the auth server (mallory) is denied, with "
    "its Unix password and with another user's auth password.",
)
def unknown_user_denied(ctx):
    for password in (UNIX_PASSWORDS["mallory"], AUTH_PASSWORDS["alice"]):
        expect_denied(login(ctx, "ssh", "mallory", password, "unknown user"), "mallory")


SERVER_STATES = [
    ("server-down", "down", "no server listening (socket removed)"),
    ("close-without-reply", "scenario:close-after-request",
     "a server that reads the request and closes without replying"),
]


def _server_state(via, state, ctx):
    t = target(ctx)
    try:
        t.server(state)
        result = login(ctx, via, "alice", AUTH_PASSWORDS["alice"], f"server {state}")
        expect_denied(result, f"a valid password with {state}")
    finally:
        t.server("reference")
    expect_alive(ctx, f"after {state}")


for _name, _state, _what in SERVER_STATES:
    for _via in ("ssh", "su"):
        case(
            f"redir.e2e.{_via}-{_name}-denied",
            rule="R-M1",
            severity=Severity.MUST,
            title=f"Denied when the server is {_name.replace('-', ' ')} ({_via})",
            requirement=f"With {_what}, a {_via} login with the right password is denied, and "
            "sshd keeps serving valid logins afterwards.",
        )(partial(_server_state, _via, _state))
