"""N-S3: expired and locked accounts are not authorised."""

from pamconform.core.outcome import Fail
from pamconform.core.registry import case_factory
from pamconform.core.verdicts import Severity
from pamconform.protocols.nslcd import codec
from pamconform.protocols.nslcd.server_steps import (
    ask,
    authc,
    authz,
    expect_granted,
    expect_refused,
    target,
)

case = case_factory(protocol="nslcd", kind="server", exclusive="user-state")


@case(
    "nslcd.server.authz-expired",
    rule="N-S3",
    severity=Severity.MUST,
    title="An expired account is not authorised",
    requirement="PAM_AUTHZ for an account whose shadowExpire has passed is not SUCCESS, and "
    "neither is the authz field of its PAM_AUTHC reply after the right password. The account "
    "phase is the only check left when authentication happened elsewhere (an SSH key).",
)
def authz_expired(ctx):
    t = target(ctx)
    a = t.accounts
    a.need("expired")
    control, expired, login = ask(
        ctx, authz(t, a.user, f"authz {a.user} (control)"),
        authz(t, a.expired, f"authz {a.expired} (expired)"),
        authc(t, a.expired, a.expired_password, f"authc {a.expired} (expired), right password"))
    expect_granted(ctx, control, f"authz of the active account {a.user}")
    expect_refused(ctx, expired, expired.op.label,
                   hint="compare shadowExpire (days since 1970) with today")
    ctx.note(f"{login.op.label}: {login.describe()}")
    if login.granted and login.authz == codec.PamCode.SUCCESS:
        raise Fail(f"an authz code other than SUCCESS in the authc reply for {a.expired}",
                   login.describe())


@case(
    "nslcd.server.authc-locked",
    rule="N-S3",
    severity=Severity.MUST,
    title="A locked account's password is refused",
    requirement="PAM_AUTHC with the right password of an account locked by the password "
    "policy (pwdAccountLockedTime) is not SUCCESS: the directory refuses the bind.",
)
def authc_locked(ctx):
    t = target(ctx)
    a = t.accounts
    a.need("locked")
    control, locked = ask(ctx, authc(t, a.user, a.password, f"right password of {a.user}"),
                          authc(t, a.locked, a.locked_password,
                                f"right password of {a.locked} (locked)"))
    expect_granted(ctx, control, "the right password of an active account")
    expect_refused(ctx, locked, locked.op.label, clean=False)


@case(
    "nslcd.server.authz-locked",
    rule="N-S3",
    severity=Severity.SHOULD,
    title="A locked account is not authorised",
    requirement="PAM_AUTHZ for an account locked by the password policy should not be "
    "SUCCESS. SHOULD, not MUST: neither daemon documents reading pwdAccountLockedTime in "
    "authz (pam_authz_search can be configured to), and the locked account's bind fails "
    "(nslcd.server.authc-locked), so only logins that skip the password gain.",
)
def authz_locked(ctx):
    t = target(ctx)
    a = t.accounts
    a.need("locked")
    r = ask(ctx, authz(t, a.locked, f"authz {a.locked} (locked)"))[0]
    ctx.note(f"{r.op.label}: {r.describe()}")
    if r.granted:
        raise Fail(f"no SUCCESS from authz for the locked account {a.locked}", r.describe(),
                   "set pam_authz_search to a filter that excludes locked accounts")
    expect_refused(ctx, r, r.op.label)
