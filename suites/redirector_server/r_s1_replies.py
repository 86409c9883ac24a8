"""R-S1: reply 0 to grant, a non-zero digit string to deny; one reply, then close."""

from pamconform.core.outcome import Fail
from pamconform.core.registry import case_factory
from pamconform.core.verdicts import Severity
from pamconform.protocols.redirector.client import Connection, request
from pamconform.protocols.redirector.reply import ReplyKind
from pamconform.protocols.redirector.server_steps import (
    POLARITY_HINT,
    expect_deny,
    expect_grant,
    login,
    target,
    wrong_password,
)

case = case_factory(protocol="redirector", kind="server")


@case(
    "redir.server.grant-valid",
    rule="R-S1",
    severity=Severity.MUST,
    title="Valid credentials are granted",
    requirement="The server replies exactly 0 for a known user with the right password.",
)
def grant_valid(ctx):
    for user, password in target(ctx).credentials:
        expect_grant(ctx, login(ctx, user, password), f"user {user!r} with the right password")


@case(
    "redir.server.deny-reply-format",
    exclusive="first-login",
    rule="R-S1",
    severity=Severity.MUST,
    title="A denial is a non-zero digit string",
    requirement="The server denies a wrong password with a non-zero decimal digit string "
    "(1 by convention), never an empty or non-numeric reply, which the original module grants.",
)
def deny_reply_format(ctx):
    t = target(ctx)
    reply = login(ctx, t.user, wrong_password(t.password))
    expect_deny(ctx, reply, "a wrong password", strict_format=True)


@case(
    "redir.server.polarity",
    exclusive="first-login",
    rule="R-S1",
    severity=Severity.MUST,
    title="0 means success (the module's polarity, not the README's)",
    requirement="The server uses 0 for success and non-zero for failure, as the module's "
    "code does, not the inverted polarity of pam_redirector's README.",
)
def polarity(ctx):
    t = target(ctx)
    right = login(ctx, t.user, t.password)
    wrong = login(ctx, t.user, wrong_password(t.password))
    if right.kind.denies and wrong.kind.grants:
        raise Fail(
            "b'0' for the right password and non-zero for a wrong one",
            f"right password -> {right.describe()}; wrong password -> {wrong.describe()}",
            POLARITY_HINT,
        )
    ctx.note(f"right password -> {right.describe()}; wrong password -> {wrong.describe()}")
    expect_grant(ctx, right, "the right password")
    expect_deny(ctx, wrong, "a wrong password")


@case(
    "redir.server.close-after-reply",
    exclusive="first-login",
    rule="R-S1",
    severity=Severity.MUST,
    title="One reply per connection, then close",
    requirement="After its single reply the server closes the connection and sends nothing more.",
)
def close_after_reply(ctx):
    t = target(ctx)
    for password, label in ((t.password, "grant"), (wrong_password(t.password), "denial")):
        with Connection(t.socket, ctx.log, t.timeout) as conn:
            conn.send(request(t.user, password))
            reply = conn.read_reply()
        if reply.timed_out:
            raise Fail(
                f"the server to close the connection after its {label}",
                f"{reply.describe()}; still open after {t.timeout:.1f} s",
            )
        if reply.kind in (ReplyKind.EMPTY, ReplyKind.MALFORMED):
            raise Fail(f"a single {label} reply before the close", reply.describe())
