"""N-M3: what the module does with the user name in the daemon's reply.

The service used here runs pam_exec after the module to show PAM_USER. Grading (by what an
attacker gains, see docs/nslcd.md): adopting the same name in another spelling passes; a
success naming *another* user, taken as a success, is NON-STRICT: only the daemon can say
it, and a daemon that lies can already grant any login it is asked about, so the module
gives nobody more than the daemon already has; it is still a hazard for applications that
re-read PAM_USER after authentication (login(1) does). The end-to-end case is a FAIL when
the login's shell actually runs as the other user.
"""

from functools import partial

from pamconform.core.outcome import Fail
from pamconform.core.registry import case_factory
from pamconform.core.verdicts import Severity
from pamconform.drivers.login import LoginOutcome
from pamconform.protocols.nslcd.module_steps import (
    OTHER_USERS,
    PASSWORD,
    SAME_USER_OTHER_CASE,
    expect_ran,
    pam_user_after,
    play,
    record_login,
    show_user_service,
    target,
)
from pamconform.protocols.nslcd.module_target import LOGIN_USER

case = case_factory(protocol="nslcd", kind="module", exclusive="lab-server")


def _play_named(ctx, scenario, args):
    t = target(ctx)
    attempt = play(ctx, scenario, args, service=show_user_service(t))
    expect_ran(attempt, "the module", t.hang_bound)
    return attempt, pam_user_after(attempt)


@case(
    f"nslcd.module.user-{SAME_USER_OTHER_CASE[0]}",
    rule="N-M3",
    severity=Severity.SHOULD,
    title="The directory's spelling of the same name is accepted",
    requirement="A success naming the requested user in another case (ALICE for alice) is "
    "granted; the module may adopt that spelling as PAM_USER.",
)
def same_user_other_case(ctx):
    attempt, user = _play_named(ctx, *SAME_USER_OTHER_CASE[1:3])
    ctx.note(f"{attempt.auth}; PAM_USER afterwards {user!r}")
    if attempt.auth != "PAM_SUCCESS":
        raise Fail("the same user in the directory's spelling to be granted", attempt.summary())
    if user is not None and user.lower() != LOGIN_USER:
        raise Fail(f"PAM_USER to stay {LOGIN_USER} in some spelling", f"PAM_USER is {user!r}")


def _other_user(name, scenario, args, what, ctx):
    attempt, user = _play_named(ctx, scenario, args)
    ctx.note(f"{attempt.auth}; PAM_USER afterwards {user!r}")
    if attempt.auth != "PAM_SUCCESS":
        return
    if name == "empty-user" and user == LOGIN_USER:
        # pam_ldap's convention: an empty name means "the name asked for"; no other user is
        # named, PAM_USER is unchanged, so nobody gains
        ctx.note(f"the daemon {what}: granted {LOGIN_USER} with PAM_USER unchanged (an "
                 "empty name read as the one asked for)")
        return
    if user is not None and user != LOGIN_USER:
        ctx.non_strict(f"the daemon {what}: the module granted and set PAM_USER to {user!r} "
                       f"(requested {LOGIN_USER!r}); an application re-reading PAM_USER "
                       "would continue as that user")
    else:
        ctx.non_strict(f"the daemon {what}: the module granted {LOGIN_USER} on an answer "
                       "about another user")


for _name, _scenario, _args, _what in OTHER_USERS:
    case(
        f"nslcd.module.user-{_name}",
        rule="N-M3",
        severity=Severity.SHOULD,
        title=f"Not a success for the requested user when the daemon {_what}",
        requirement=f"When the daemon {_what} for a request about {LOGIN_USER}, the module "
        "should neither grant the requested user nor switch PAM_USER to the named one.",
    )(partial(_other_user, _name, _scenario, _args, _what))


@case(
    "nslcd.module.e2e-su-other-user",
    rule="N-M3",
    severity=Severity.MUST,
    title="su never runs a shell as the user the daemon named instead",
    requirement="When the daemon answers success naming root for su's request about alice, "
    "the shell su starts (if any) runs as alice, never as root.",
)
def su_other_user(ctx):
    t = target(ctx)
    t.scenario("compose", parts=[["version"], ["action"], ["begin"], ["int", 0],
                                 ["str", "root"], ["int", 0], ["str", ""], ["end"]])
    result = t.su("mallory", LOGIN_USER, PASSWORD)
    record_login(ctx, "su alice, daemon names root", result)
    ctx.note(f"{result.outcome}: {result.detail}")
    if result.outcome is LoginOutcome.ERROR and "shell ran as" in result.detail:
        raise Fail(f"a shell as {LOGIN_USER} or none", result.detail)
    if result.outcome is LoginOutcome.HUNG:
        raise Fail("su to end", result.detail)
