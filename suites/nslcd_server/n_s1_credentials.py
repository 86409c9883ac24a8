"""N-S1: grant only the exact credentials of a known user."""

from functools import partial

from pamconform.core.outcome import Fail, Skip
from pamconform.core.registry import case_factory
from pamconform.core.verdicts import Severity
from pamconform.protocols.nslcd.server_steps import (
    ask,
    authc,
    expect_granted,
    expect_refused,
    target,
)

case = case_factory(protocol="nslcd", kind="server", exclusive="user-state")


def _variants(name, password):
    variants = {
        "wrong": [b"not-" + password[::-1]],
        "empty": [b""],
        "truncated": [password[:-1], password[:1]],
        "extended": [password + b"x", password + b" ", b" " + password],
        "case-changed": [password.swapcase(), password.upper()],
    }
    return [v for v in variants[name] if v != password]


def _deny_password_variant(name, ctx):
    t = target(ctx)
    a = t.accounts
    variants = _variants(name, a.password)
    if not variants:
        raise Skip(f"the account's password has no {name} variant")
    ops = [authc(t, a.user, a.password, f"right password of {a.user} (control)")]
    ops += [authc(t, a.user, pw, f"{name} password #{i} of {a.user} ({len(pw)} B)")
            for i, pw in enumerate(variants, 1)]
    control, *tried = ask(ctx, *ops)
    expect_granted(ctx, control, "the right password")
    for r in tried:
        expect_refused(ctx, r, r.op.label)


PASSWORD_VARIANTS = [
    ("wrong", "A wrong password is refused", "a wrong password"),
    ("empty", "An empty password is refused",
     "an empty password (an LDAP simple bind with a DN and no password is an "
     "unauthenticated bind that a directory may report as a success; the daemon must not "
     "pass it on as authentication)"),
    ("truncated", "A truncated password is refused", "the right password cut short"),
    ("extended", "An extended password is refused",
     "the right password with a byte or a space added"),
    ("case-changed", "A case-changed password is refused", "the right password in another case"),
]

for _name, _title, _what in PASSWORD_VARIANTS:
    case(
        f"nslcd.server.deny-{_name}-password",
        rule="N-S1",
        severity=Severity.MUST,
        title=_title,
        requirement=f"PAM_AUTHC never answers authc SUCCESS for {_what}; it answers with a "
        "refusing code (a close instead is NON-STRICT: nobody gets in, but pam_ldap reports "
        "an error rather than a refusal).",
    )(partial(_deny_password_variant, _name))


@case(
    "nslcd.server.deny-unknown-user",
    rule="N-S1",
    severity=Severity.MUST,
    title="An unknown user is refused",
    requirement="PAM_AUTHC for a user the directory does not hold is never SUCCESS, whatever "
    "the password (an empty reply or a refusing code; a close is NON-STRICT).",
)
def deny_unknown_user(ctx):
    t = target(ctx)
    a = t.accounts
    for r in ask(ctx, authc(t, a.unknown, a.password, f"unknown user {a.unknown!r}"),
                 authc(t, a.unknown, b"", f"unknown user {a.unknown!r}, empty password")):
        expect_refused(ctx, r, r.op.label)


@case(
    "nslcd.server.deny-blank-user",
    rule="N-S1",
    severity=Severity.MUST,
    title="A blank user name with a wrong password is refused",
    requirement="A blank user name selects the administrator (rootpwmoddn) bind: with a "
    "password that is not the administrator's (a user's password, a wrong one) it is never "
    "SUCCESS, even for a root peer.",
)
def deny_blank_user(ctx):
    t = target(ctx)
    a = t.accounts
    wrong = b"not-" + (a.admin_password or b"the-administrator-password")[::-1]
    for r in ask(ctx, authc(t, "", a.password, f"blank user with {a.user}'s password"),
                 authc(t, "", wrong, "blank user, wrong password")):
        expect_refused(ctx, r, r.op.label)


@case(
    "nslcd.server.reply-names-the-user",
    rule="N-S1",
    severity=Severity.MUST,
    title="A grant names the user that was asked for",
    requirement="The user name in a granting PAM_AUTHC entry is the requested user, or the "
    "directory's spelling of the same name (pam_ldap may continue as that user): never "
    "another user.",
)
def reply_names_the_user(ctx):
    t = target(ctx)
    a = t.accounts
    ops = [authc(t, a.user, a.password, f"right password of {a.user}")]
    if a.mixed is not None:
        ops.append(authc(t, a.mixed, a.mixed_password,
                         f"right password of {a.mixed_canonical} asked as {a.mixed!r}"))
    right, *others = ask(ctx, *ops)
    expect_granted(ctx, right, "the right password")
    if (right.username or "").lower() != a.user.lower():  # the directory's spelling passes
        raise Fail(f"a grant naming {a.user!r} in some spelling", right.describe(),
                   "pam_ldap continues as the user the reply names")
    if not others:
        ctx.note("no user spelled differently in the directory was named "
                 "(--mixed-case-user): only the exact spelling was asked")
        return
    mixed = others[0]
    ctx.note(f"{mixed.op.label}: {mixed.describe()}")
    if mixed.granted and (mixed.username or "").lower() != a.mixed.lower():
        raise Fail(f"a grant naming {a.mixed!r} in some spelling", mixed.describe())
    if not mixed.granted:
        ctx.note("the other spelling was not granted: stricter than the directory, no gain")


@case(
    "nslcd.server.nul-in-credentials",
    rule="N-S1",
    severity=Severity.SHOULD,
    title="A NUL byte does not end a password or a user name",
    requirement="The right password followed by a NUL and junk, and the right user name "
    "followed by a NUL and junk, should be refused: the strings on the wire have lengths, "
    "and a daemon that stops at the NUL (a C string) grants bytes that are not the password. "
    "SHOULD, not MUST: pam_ldap gets its strings from PAM as C strings and cannot send a "
    "NUL, and a direct client gets a grant only with the exact password before the NUL, so "
    "nobody gains a login they could not have had.",
)
def nul_in_credentials(ctx):
    t = target(ctx)
    a = t.accounts
    control, *tried = ask(
        ctx, authc(t, a.user, a.password, f"right password of {a.user} (control)"),
        authc(t, a.user, a.password + b"\0junk", "the right password, NUL, junk"),
        authc(t, a.user + "\0junk", a.password, "the user name, NUL, junk; right password"))
    expect_granted(ctx, control, "the right password")
    for r in tried:
        ctx.note(f"{r.op.label}: {r.describe()}")
        if r.granted:
            raise Fail(f"no grant for {r.op.label}", r.describe(),
                       "compare the strings by their length, not up to a NUL")
        expect_refused(ctx, r, r.op.label, clean=False)
