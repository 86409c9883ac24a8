"""N-M1: the module fails closed. Through the direct driver (pamdrive), the scenario server
stands in for nslcd on the module's socket and misbehaves one way per case; then the real
daemon's outages (nslcd stopped, its directory stopped). Only a whole, well-formed
authc SUCCESS may give PAM_SUCCESS."""

from functools import partial

from pamconform.core.registry import case_factory
from pamconform.core.verdicts import Severity
from pamconform.protocols.nslcd.module_steps import (
    REFUSALS,
    UNTERMINATED,
    expect_granted,
    expect_refused,
    play,
    record,
    target,
)
from pamconform.protocols.nslcd.module_target import LDAP_LOGIN_USER, LOGIN_USER

case = case_factory(protocol="nslcd", kind="module", exclusive="lab-server")

#: The lab directory's password of LDAP_LOGIN_USER (a fixture of containers/nslcd/).
LDAP_PASSWORD = "nancy-ldap-pw"


@case(
    "nslcd.module.grant",
    rule="N-M1",
    severity=Severity.MUST,
    title="A well-formed success is a success (positive control)",
    requirement="With a daemon answering authc SUCCESS for the requested user, "
    "pam_authenticate returns PAM_SUCCESS (a module that never grants is broken, not closed).",
)
def grant(ctx):
    t = target(ctx)
    expect_granted(play(ctx, "grant", {}), "a login the daemon grants", t.hang_bound)


def _refused(scenario, args, what, ctx):
    attempt = play(ctx, scenario, args)
    ctx.note(attempt.summary())
    expect_refused(attempt, f"a login while the daemon {what}", target(ctx).hang_bound)


for _name, _scenario, _args, _what in REFUSALS:
    case(
        f"nslcd.module.daemon-{_name}",
        rule="N-M1",
        severity=Severity.MUST,
        title=f"Refused when the daemon {_what}",
        requirement=f"When the daemon {_what}, pam_authenticate does not return PAM_SUCCESS.",
    )(partial(_refused, _scenario, _args, _what))


for _name, _scenario, _args, _what in UNTERMINATED:
    case(
        f"nslcd.module.daemon-{_name}",
        rule="N-M1",
        severity=Severity.SHOULD,
        title=f"Refused when the daemon {_what}",
        requirement=f"When the daemon {_what}, pam_authenticate should not return "
        "PAM_SUCCESS. SHOULD, not MUST: the entry, authc and authz codes included, arrived "
        "whole, so the daemon's decision is complete and nobody gains a login the daemon did "
        "not grant; a strict client still wants the terminator (docs/nslcd.md, N-M1).",
    )(partial(_refused, _scenario, _args, _what))


@case(
    "nslcd.module.daemon-reply-before-request",
    rule="N-M1",
    severity=Severity.SHOULD,
    title="Refused when the daemon answers before the request",
    requirement="A daemon that sends a success as soon as it accepts, before reading the "
    "request, should not be granted. A byte stream cannot show when the reply was sent, so "
    "only a module that checks for unsolicited bytes before writing can see it; hence SHOULD.",
)
def reply_before_request(ctx):
    # the early grant names the login user: a module refuses it only by seeing it come early
    _refused("reply-before-request", {"user": LOGIN_USER}, "answers before the request", ctx)


def _real(ctx, state, password):
    t = target(ctx)
    try:
        t.daemon(state)
        attempt = t.attempt(LDAP_LOGIN_USER, password)
    finally:
        t.restore()
    record(ctx, f"real nslcd, state {state}", attempt)
    ctx.note(attempt.summary())
    return attempt


@case(
    "nslcd.module.nslcd-right-password",
    rule="N-M1",
    severity=Severity.MUST,
    title="The real daemon's grant is a success (positive control)",
    requirement="With Debian's nslcd and the lab directory up, the directory password of a "
    "directory user gives PAM_SUCCESS.",
)
def nslcd_right_password(ctx):
    t = target(ctx)
    expect_granted(_real(ctx, "nslcd", LDAP_PASSWORD), "the right directory password",
                   t.hang_bound)


@case(
    "nslcd.module.nslcd-wrong-password",
    rule="N-M1",
    severity=Severity.MUST,
    title="The real daemon's refusal is a refusal",
    requirement="With Debian's nslcd up, a wrong password is refused.",
)
def nslcd_wrong_password(ctx):
    t = target(ctx)
    expect_refused(_real(ctx, "nslcd", "not-" + LDAP_PASSWORD), "a wrong password",
                   t.hang_bound)


OUTAGES = [
    ("nslcd-stopped", "down", "nslcd is stopped (no socket)",
     "PAM_AUTHINFO_UNAVAIL is the documented answer (PAM_IGNORE only with "
     "ignore_authinfo_unavail, which turns into a grant in a stack where nothing else "
     "decides: that is N-M5's business)"),
    ("slapd-stopped", "slapd-down", "nslcd runs but its directory is stopped",
     "nslcd cannot bind, so nothing may succeed"),
]

for _name, _state, _what, _why in OUTAGES:
    case(
        f"nslcd.module.{_name}",
        rule="N-M1",
        severity=Severity.MUST,
        title=f"Refused when {_what}",
        requirement=f"When {_what}, the right password does not give PAM_SUCCESS; {_why}.",
    )(lambda ctx, _state=_state, _what=_what: expect_refused(
        _real(ctx, _state, LDAP_PASSWORD), f"the right password while {_what}",
        target(ctx).hang_bound))
