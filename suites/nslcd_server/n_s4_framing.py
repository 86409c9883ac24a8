"""N-S4: framing: refuse what is not a whole, valid request, and keep serving."""

from pamconform.core.outcome import Fail
from pamconform.core.registry import case_factory
from pamconform.core.verdicts import Severity
from pamconform.protocols.nslcd import codec
from pamconform.protocols.nslcd.server_steps import (
    alive,
    ask,
    authc,
    expect_granted,
    expect_refused,
    pam_request,
    raw,
    target,
)

case = case_factory(protocol="nslcd", kind="server", exclusive="user-state")

#: A string longer than any name or password buffer of the daemons (256 B / 1 KiB).
OVERLONG = 5000
#: Bytes a cut string declares beyond those sent.
MISSING = 27


def _authc_body(user, password):
    return codec.PamContext(user).encode() + codec.string(password)


@case(
    "nslcd.server.split-writes",
    rule="N-S4",
    severity=Severity.SHOULD,
    title="A request split across writes is read whole",
    requirement="The right PAM_AUTHC request written in three pieces 0.3 s apart (inside the "
    "user name and inside the password) is answered as if sent at once: granted.",
)
def split_writes(ctx):
    t = target(ctx)
    a = t.accounts
    whole = pam_request(codec.Action.PAM_AUTHC, a.user, codec.string(a.password))
    cut1, cut2 = 8 + 4 + 2, len(whole) - 3
    r = ask(ctx, raw("the right password in 3 writes, 0.3 s apart",
                     [whole[:cut1], whole[cut1:cut2], whole[cut2:]], t.timeout, pause=0.3))[0]
    expect_granted(ctx, r, r.op.label)


def _refused_then_alive(ctx, ops, what):
    for r in ask(ctx, *ops):
        expect_refused(ctx, r, r.op.label, clean=False)
    alive(ctx, what)


@case(
    "nslcd.server.wrong-version",
    rule="N-S4",
    severity=Severity.MUST,
    title="A wrong protocol version is refused",
    requirement="The right credentials under a version word other than 2 (1, 3, -1) are "
    "never granted, and the daemon keeps serving.",
)
def wrong_version(ctx):
    t = target(ctx)
    a = t.accounts
    ops = [raw(f"right credentials, version {v}",
               [pam_request(codec.Action.PAM_AUTHC, a.user, codec.string(a.password),
                            version=v)], t.timeout) for v in (1, 3, -1)]
    _refused_then_alive(ctx, ops, "wrong versions")


@case(
    "nslcd.server.unknown-action",
    rule="N-S4",
    severity=Severity.MUST,
    title="An unknown action is refused",
    requirement="A request with an action code the protocol does not define, carrying the "
    "right credentials, is never granted, and the daemon keeps serving.",
)
def unknown_action(ctx):
    t = target(ctx)
    a = t.accounts
    body = _authc_body(a.user, a.password)
    ops = [raw(f"action 0x{action:08x} with the right credentials",
               [codec.header(action) + body], t.timeout)
           for action in (0x000D00FF, 0x7FFFFFFF, 0)]
    _refused_then_alive(ctx, ops, "unknown actions")


@case(
    "nslcd.server.huge-length",
    rule="N-S4",
    severity=Severity.MUST,
    title="Huge and negative length fields are refused",
    requirement="A string length of 2^31-1, 2^30 or a negative one (as user name or as "
    "password) is refused without a grant and without allocating it: the daemon answers or "
    "closes, and keeps serving. A daemon that waits for the declared bytes is a client "
    "stalling mid-request to it, so it has --idle-limit to give up (N-S5), not --timeout.",
)
def huge_length(ctx):
    t = target(ctx)
    a = t.accounts
    head = codec.header(codec.Action.PAM_AUTHC)
    ops = []
    # The bytes after the length are not the password: a daemon that gives up waiting and
    # uses what came is graded by the cut-string cases, not here.
    filler = b"x" * 16
    for n in (0x7FFFFFFF, 1 << 30, -1, -(1 << 31)):
        ops.append(raw(f"user name length {n}", [head + codec.int32(n) + filler],
                       t.idle_limit))
        ops.append(raw(f"password length {n}",
                       [head + codec.PamContext(a.user).encode() + codec.int32(n) + filler],
                       t.idle_limit))
    _refused_then_alive(ctx, ops, "huge and negative lengths")


@case(
    "nslcd.server.overlong-strings",
    rule="N-S4",
    severity=Severity.MUST,
    title="Over-long strings are refused",
    requirement=f"A {OVERLONG}-byte user name and the right password followed by "
    f"{OVERLONG} bytes (each sent whole) are never granted, and the daemon keeps serving.",
)
def overlong_strings(ctx):
    t = target(ctx)
    a = t.accounts
    ops = [authc(t, "n" * OVERLONG, a.password, f"a {OVERLONG}-byte user name"),
           authc(t, a.user, a.password + b"p" * OVERLONG,
                 f"the right password plus {OVERLONG} bytes")]
    _refused_then_alive(ctx, ops, "over-long strings")


def _cut(ctx, password, what):
    """A request whose password declares MISSING more bytes than are sent, then a stall."""
    t = target(ctx)
    a = t.accounts
    chunk = (codec.header(codec.Action.PAM_AUTHC) + codec.PamContext(a.user).encode()
             + codec.int32(len(password) + MISSING) + password)
    return ask(ctx, raw(f"{what}, declared {MISSING} bytes longer, then a stall", [chunk],
                        t.idle_limit))[0]


@case(
    "nslcd.server.stall-mid-string-no-grant",
    rule="N-S4",
    severity=Severity.MUST,
    title="A request cut inside a string is never granted",
    requirement=f"A PAM_AUTHC whose password declares {MISSING} more bytes than arrive, "
    "holding a wrong password (the right one missing its last byte), is never granted when "
    "the daemon gives up waiting: a timeout is not a verdict on the password. Whether the "
    "daemon gives up in time is graded under N-S5.",
)
def stall_mid_string_no_grant(ctx):
    t = target(ctx)
    r = _cut(ctx, t.accounts.password[:-1], "the right password missing its last byte")
    ctx.note(f"{r.op.label}: {r.describe()}")
    if r.granted:
        raise Fail("no grant for a request that never arrived whole", r.describe(),
                   "on a read timeout, close the connection without an answer")


@case(
    "nslcd.server.cut-string-not-complete",
    rule="N-S4",
    severity=Severity.SHOULD,
    title="A string cut by a read timeout is not taken as complete",
    requirement=f"The right password declared {MISSING} bytes longer than sent should not "
    "be granted once the daemon stops waiting: a string is complete only when its declared "
    "bytes arrived. SHOULD, not MUST: the bytes used are the client's own right password, "
    "so a grant hands out nothing the client could not get anyway.",
)
def cut_string_not_complete(ctx):
    t = target(ctx)
    r = _cut(ctx, t.accounts.password, "the right password")
    ctx.note(f"{r.op.label}: {r.describe()}")
    if r.granted:
        raise Fail("no grant for a string whose declared bytes never arrived", r.describe(),
                   "treat a short read as an error, not as the end of the string")
