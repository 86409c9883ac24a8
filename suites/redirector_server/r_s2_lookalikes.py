"""R-S2: a password or user name that looks (or normalises to) the same is not the same.

Each given login is sent in the forms of ``pamconform.core.lookalikes``: Unicode
normalisation forms, full-width letters, case folding beyond ASCII (``ß``/``SS``,
Turkish dotless and dotted i), a combining mark, Cyrillic and Greek homoglyphs, Latin-1
against UTF-8, a BOM, leading and trailing Unicode spaces. Only variants that differ in
bytes are sent. The variants of a password are derived secrets: the redactor knows
them too and shows them relative to the password's marker (``.fullwidth()`` after it).
"""

from pamconform.core.credentials import show_user
from pamconform.core.lookalikes import variants
from pamconform.core.outcome import Fail
from pamconform.core.registry import case_factory
from pamconform.core.verdicts import Severity
from pamconform.protocols.redirector.server_steps import (
    expect_deny,
    expect_grant,
    login,
    logins,
    target,
)

case = case_factory(protocol="redirector", kind="server")

#: Look-alikes sent between two valid logins of their user: a lock-out that counts
#: consecutive failures never sees more than this many, and each batch has its control.
BATCH = 4

NORMALISES = ("the server compares normalised text (Unicode forms, case folding, "
              "stripped Unicode spaces or lenient decoding), so it grants a password the "
              "user never set")


def _judge_password_lookalikes(ctx, user, password, sent):
    """Send the look-alikes of one login's password whose kind is not in ``sent`` yet
    (each kind once per run), a valid login after each batch."""
    who = show_user(user)
    forms = [(name, v) for name, v in variants(password) if name not in sent]
    for start in range(0, len(forms), BATCH):
        batch = forms[start:start + BATCH]
        sent.update(name for name, _ in batch)
        for (name, _), reply in zip(batch, logins(ctx, [(user, v) for _, v in batch]),
                                    strict=True):
            what = f"the {name} look-alike of {who}'s password"
            if reply.kind.grants:
                raise Fail(f"{what} to be denied", reply.describe(), NORMALISES)
            expect_deny(ctx, reply, what)
        control = login(ctx, user, password)
        if not control.kind.grants:
            ctx.informational(
                f"{who}'s valid login was refused after {start + len(batch)} look-alikes "
                f"({control.describe()}): a lock-out? the other {len(forms) - start - len(batch)}"
                " were not sent")
            return
    ctx.note(f"{who}: {len(forms)} look-alike passwords denied "
             f"({', '.join(name for name, _ in forms) or 'no kind not sent already'})")


@case(
    "redir.server.deny-lookalike-password",
    rule="R-S2",
    severity=Severity.MUST,
    title="Look-alike passwords are denied",
    requirement="The server never grants a password that only looks like, or normalises "
    "to, the right one: NFC/NFD/NFKC/NFKD forms, full-width letters, Unicode case "
    "folding (ß/SS, dotless i), a combining mark, homoglyphs, Latin-1 for UTF-8, a BOM, "
    "leading or trailing NBSP, ideographic or zero-width space (each kind on the first "
    "login whose password has it).",
    exclusive=("user-state", "first-login"),
)
def deny_lookalike_password(ctx):
    t = target(ctx)
    sent: set[str] = set()
    for n, (user, password) in enumerate(t.credentials):
        if n and all(name in sent for name, _ in variants(password)):
            continue  # every kind of look-alike it has was sent for an earlier login
        control = login(ctx, user, password)
        if not control.kind.grants:
            if n == 0:  # positive control: a server that denies everything must not pass
                expect_grant(ctx, control, "the right password (control)")
            ctx.informational(f"{show_user(user)}'s valid login was refused "
                              f"({control.describe()}): its look-alikes were not sent")
            continue
        _judge_password_lookalikes(ctx, user, password, sent)


@case(
    "redir.server.lookalike-user",
    rule="R-S2",
    severity=Severity.SHOULD,
    title="Look-alike user names are not granted",
    requirement="The server should not grant a user name that only looks like, or "
    "normalises to, a known one (the first login's, and any non-ASCII one's) with that "
    "user's right password; granting it is non-strict, as for names differing in case "
    "or space.",
)
def lookalike_user(ctx):
    t = target(ctx)
    expect_grant(ctx, login(ctx, t.user, t.password), "the right login (control)")
    # the first login, and any other whose name is not plain ASCII (more forms to try)
    chosen = [pair for n, pair in enumerate(t.credentials) if n == 0 or not pair[0].isascii()]
    configured = {name for name, _ in t.credentials}
    for user, password in chosen:
        who = show_user(user)
        # a variant that is another given user's name ("BOB" beside "bob") is that user
        forms = [(kind, name) for kind, name in variants(user) if name not in configured]
        replies = logins(ctx, [(name, password) for _, name in forms])
        granted = []
        for (kind, name), reply in zip(forms, replies, strict=True):
            what = f"the {kind} look-alike {name!r} of user {who}"
            if reply.kind.grants:
                granted.append(kind)
            else:
                expect_deny(ctx, reply, what)
        if granted:
            ctx.non_strict(f"look-alikes of user {who} were granted with {who}'s password "
                           f"({', '.join(granted)}): the server normalises user names")
        else:
            ctx.note(f"{who}: {len(forms)} look-alike user names denied")
