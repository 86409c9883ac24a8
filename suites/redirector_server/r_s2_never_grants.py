"""R-S2: never grant anything but the exact user and password, framed exactly."""

from functools import partial

from pamconform.core.outcome import Skip
from pamconform.core.registry import case_factory
from pamconform.core.verdicts import Severity
from pamconform.protocols.redirector.server_steps import (
    STALLS,
    ask,
    expect_deny,
    expect_grant,
    expect_stall_denied,
    login,
    open_stall,
    stranger,
    target,
    wait_out_stall,
)

case = case_factory(protocol="redirector", kind="server")

LONG = 65536


def _variants(name, password):
    variants = {
        "wrong": [stranger("pw")],
        "empty": [b""],
        "truncated": [password[:-1]] if len(password) > 1 else [],
        "extended": [password + b"x", password + password[-1:]],
        "case-changed": [password.swapcase()] if password.swapcase() != password else [],
        "padded": [b" " + password, password + b" ", b"\t" + password + b"\t"],
    }
    return [v for v in variants[name] if v != password]


def _deny_password_variant(name, ctx):
    t = target(ctx)
    variants = _variants(name, t.password)
    if not variants:
        raise Skip(f"the given password has no {name} variant")
    # positive control: a server that denies everything must not pass these cases
    expect_grant(ctx, login(ctx, t.user, t.password), "the right password (control)")
    for password in variants:
        expect_deny(ctx, login(ctx, t.user, password), f"password {password!r} ({name})")


PASSWORD_VARIANTS = [
    ("wrong", "A wrong password is denied", "a wrong password"),
    ("empty", "An empty password is denied", "an empty password"),
    ("truncated", "A truncated password is denied", "the right password missing its last byte"),
    ("extended", "An extended password is denied", "the right password with bytes added"),
    ("case-changed", "A case-changed password is denied", "the right password with case swapped"),
    ("padded", "A whitespace-padded password is denied", "the right password padded with spaces "
     "or tabs (granting it grants a different password)"),
]

for _name, _title, _what in PASSWORD_VARIANTS:
    case(
        f"redir.server.deny-{_name}-password",
        exclusive="first-login",
        rule="R-S2",
        severity=Severity.MUST,
        title=_title,
        requirement=f"The server never grants {_what}.",
    )(partial(_deny_password_variant, _name))


@case(
    "redir.server.deny-unknown-user",
    rule="R-S2",
    severity=Severity.MUST,
    title="An unknown user is denied",
    requirement="The server denies a user it does not know, whatever the password.",
)
def deny_unknown_user(ctx):
    t = target(ctx)
    expect_deny(ctx, login(ctx, stranger("user"), t.password), "an unknown user")
    expect_deny(ctx, login(ctx, b"", t.password), "an empty user name")


@case(
    "redir.server.user-case-and-space",
    rule="R-S2",
    severity=Severity.SHOULD,
    title="User names are not normalised",
    requirement="The server should not grant a user name differing in case or surrounding "
    "whitespace (granting it is non-strict: it normalises names).",
)
def user_case_and_space(ctx):
    t = target(ctx)
    names = [t.user.swapcase(), b" " + t.user, t.user + b" "]
    for name in [n for n in names if n != t.user]:
        reply = login(ctx, name, t.password)
        if reply.kind.grants:
            ctx.non_strict(f"user {name!r} was granted: the server normalises user names")
        else:
            expect_deny(ctx, reply, f"user {name!r}")


@case(
    "redir.server.deny-missing-password-line",
    rule="R-S2",
    severity=Severity.MUST,
    title="A request with a missing line is denied",
    requirement="The server never grants a request that ends (write side closed) before "
    "the second newline: the user name alone, or nothing. A close without a reply is right "
    "(no request was made, as for a stalled client). The right password without its "
    "newline granted is NON-STRICT: the password had to be exact, so it gains nothing.",
)
def deny_missing_line(ctx):
    t = target(ctx)
    for payload in (t.user + b"\n", b""):
        expect_stall_denied(ctx, ask(ctx, payload, shutdown=True),
                            f"request {payload!r} then EOF")
    what = "the right password without its newline, then EOF"
    reply = ask(ctx, t.user + b"\n" + t.password, shutdown=True)
    if reply.kind.grants:
        ctx.non_strict(f"{what}: granted ({reply.describe()}); the password was exact, so "
                       "nothing is gained, but the module always sends the newline")
    else:
        expect_stall_denied(ctx, reply, what)


@case(
    "redir.server.deny-extra-line",
    exclusive="first-login",
    rule="R-S2",
    severity=Severity.SHOULD,
    title="Bytes after the second newline in the same write are refused",
    requirement="The server should deny a right request that carries more bytes after the "
    "second newline in the same write (granting it is non-strict). Bytes written later "
    "are not part of the request and are not judged: a server may answer at the second "
    "newline.",
)
def deny_extra_line(ctx):
    # Graded by what an attacker gains: to be granted, the password before the second
    # newline had to be exact, so a grant here hands out nothing a wrong password could
    # get. The module never sends such bytes, so they point at a confused client, and a
    # careful server refuses them (SHOULD). Only bytes that arrive with the request (one
    # write, one read) can be judged; a server that answers at the second newline
    # cannot see bytes written after it, and that is correct.
    t = target(ctx)
    # positive control, which also ends a run of earlier failures (docs/server.md#lock-outs)
    expect_grant(ctx, login(ctx, t.user, t.password), "the right password (control)")
    for extra in (b"extra\n", b"x", b"\n"):
        payload = t.user + b"\n" + t.password + b"\n" + extra
        reply = ask(ctx, payload)
        what = f"a right request followed by {extra!r} in the same write"
        if reply.kind.grants:
            ctx.non_strict(f"{what} was granted: the server ignores bytes after the "
                           "second newline")
        else:
            expect_deny(ctx, reply, what)


@case(
    "redir.server.deny-nul-in-password",
    exclusive="first-login",
    rule="R-S2",
    severity=Severity.MUST,
    title="A NUL byte is refused",
    requirement="The server never grants a request with a NUL byte, such as the right "
    "password followed by NUL and junk (a C strcmp would stop at the NUL).",
)
def deny_nul(ctx):
    t = target(ctx)
    for user, password in (
        (t.user, t.password + b"\0junk"),
        (t.user + b"\0junk", t.password),
        (t.user, t.password[:1] + b"\0" + t.password[1:]),
    ):
        expect_deny(ctx, login(ctx, user, password), f"user {user!r} password {password!r}")


@case(
    "redir.server.deny-cr-line-ending",
    exclusive="first-login",
    rule="R-S2",
    severity=Severity.MUST,
    title="CR line endings are not stripped into a grant",
    requirement="The server never grants user\\r\\npassword\\r\\n: the password it carries "
    "ends in a CR and differs from the right one.",
)
def deny_cr(ctx):
    t = target(ctx)
    payload = t.user + b"\r\n" + t.password + b"\r\n"
    expect_deny(ctx, ask(ctx, payload), "a request with CRLF line endings")


@case(
    "redir.server.deny-overlong-user",
    rule="R-S2",
    severity=Severity.MUST,
    title="An over-long user name is denied",
    requirement=f"The server never grants a {LONG}-byte user name, and answers or closes "
    "within the timeout.",
)
def deny_overlong_user(ctx):
    t = target(ctx)
    reply = ask(ctx, b"a" * LONG + b"\n" + t.password + b"\n")
    expect_deny(ctx, reply, f"a {LONG}-byte user name")


@case(
    "redir.server.deny-overlong-password",
    exclusive="first-login",
    rule="R-S2",
    severity=Severity.MUST,
    title="An over-long password is denied",
    requirement=f"The server never grants the right password followed by {LONG} bytes.",
)
def deny_overlong_password(ctx):
    t = target(ctx)
    reply = ask(ctx, t.user + b"\n" + t.password + b"a" * LONG + b"\n")
    expect_deny(ctx, reply, f"the right password plus {LONG} bytes")


# A stalled client: it sends nothing, or stops in the middle of a field, and waits. A
# server that times it out must close without a grant: a `0` hands a login to a
# request that never carried a password (any client that reads the reply after a
# partial or failed write, e.g. a module that ignores write errors, is let in).
STALL_WHAT = {
    "silent": "a client that connects and sends nothing",
    "mid-user": "a client that stops in the middle of the user name",
    "mid-password": "a client that stops in the middle of the password (after the user line)",
}


def _deny_stalled(place, ctx):
    t = target(ctx)
    with open_stall(ctx, place) as conn:
        reply = wait_out_stall(ctx, conn)
    if reply.timed_out:
        ctx.note(f"still open after --idle-limit ({t.idle_limit:g} s) with no grant; "
                 "whether it is dropped is graded under R-S4")
    expect_stall_denied(ctx, reply, STALL_WHAT[place])


for _place in STALLS:
    case(
        f"redir.server.deny-stalled-{_place}",
        exclusive="idle-clients",
        rule="R-S2",
        severity=Severity.MUST,
        title=f"A stalled client is never granted ({_place})",
        requirement=f"The server never grants {STALL_WHAT[_place]}: when it gives up "
        "(within --idle-limit), it closes without replying 0; anything it sends first is "
        "checked.",
    )(partial(_deny_stalled, _place))
