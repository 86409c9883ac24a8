"""T-S1: only the exact full token is accepted, once, and not after it expires."""

import base64
import secrets
import time
from functools import partial

from pamconform.core.outcome import Fail, Skip
from pamconform.core.registry import case_factory
from pamconform.core.verdicts import Severity
from pamconform.protocols.token.client import ConnectFailed, Connection, socket_state
from pamconform.protocols.token.server_steps import (
    attempt,
    expect_fail_reply,
    expect_pass,
    expect_refused,
    mint,
    require,
    target,
    variant_of,
)
from pamconform.protocols.token.target import MAX_EXPIRY_WAIT

case = case_factory(protocol="transient-token", kind="server", exclusive="user-state")


@case(
    "token.server.accept-exact-token",
    rule="T-S1",
    severity=Severity.MUST,
    title="A fresh token is accepted",
    requirement="A fresh token written whole, with no newline, as the module does, is "
    "answered with exactly PASS\\n\\0.",
)
def accept_exact_token(ctx):
    require(ctx, 1)
    minted = mint(ctx)
    expect_pass(ctx, attempt(ctx, minted, minted.token.raw, shutdown=False), "the fresh token")


@case(
    "token.server.single-use",
    rule="T-S1",
    severity=Severity.MUST,
    title="A token is accepted only once",
    requirement="After a token was accepted, presenting it again is refused (or its socket "
    "is gone), and of two connections racing with the same token at most one gets PASS.",
)
def single_use(ctx):
    require(ctx, 2)
    minted = mint(ctx)
    first = attempt(ctx, minted, minted.token.raw, shutdown=False)
    expect_pass(ctx, first, "the fresh token (first use)")
    for n in (2, 3):
        expect_refused(ctx, attempt(ctx, minted, minted.token.raw, shutdown=False),
                       f"the same token, use {n}")
    # two clients connected before either sends: only one may win
    t = target(ctx)
    racer = mint(ctx)
    conns = []
    try:
        for _ in range(2):
            try:
                conns.append(Connection(racer.socket, ctx.log, t.timeout))
            except ConnectFailed:
                break  # the server stopped listening after the first connection: fine
        for conn in conns:
            conn.send(racer.token.raw)
        replies = [conn.read_reply() for conn in conns]
    finally:
        for conn in conns:
            conn.close()
    granted = [r for r in replies if r.grants]
    ctx.note("racing connections: " + "; ".join(r.describe() for r in replies))
    if len(granted) > 1:
        raise Fail("at most one PASS for two racing connections with the same token",
                   f"{len(granted)} PASS replies")


@case(
    "token.server.dead-after-failure",
    rule="T-S1",
    severity=Severity.SHOULD,
    title="A wrong attempt spends the token",
    requirement="After one wrong attempt, the right token is refused too: every attempt "
    "uses the token up.",
)
def dead_after_failure(ctx):
    require(ctx, 1)
    minted = mint(ctx)
    wrong = minted.token.head + _other_auth(minted.token.auth)
    expect_refused(ctx, attempt(ctx, minted, wrong.encode()), "a wrong token")
    expect_refused(ctx, attempt(ctx, minted, minted.token.raw, shutdown=False),
                   "the right token after a wrong attempt")


@case(
    "token.server.wrong-token-refused",
    rule="T-S1",
    severity=Severity.MUST,
    title="A wrong token is refused with FAIL",
    requirement="A token with the right uid and pid but another secret is refused; the "
    "refusal should be FAIL\\n\\0.",
)
def wrong_token_refused(ctx):
    require(ctx, 1)
    minted = mint(ctx)
    wrong = minted.token.head + _other_auth(minted.token.auth)
    expect_fail_reply(ctx, attempt(ctx, minted, wrong.encode(), shutdown=False),
                      "another secret")


def _other_auth(auth: str) -> str:
    while True:
        other = base64.b64encode(secrets.token_bytes(24)).decode()
        if other != auth:
            return other


# ------------------------------------------------------------------ tampered tokens


def _prefixes(token):
    text = token.text
    cuts = [len(text) - 1, len(text) - 16, len(token.head), 3, 1, 0]
    return [text[:n] for n in dict.fromkeys(cuts) if 0 <= n < len(text)]


def _suffixes(token):
    return [token.text + s for s in ("A", "=", "\n", "\0", "\0junk")]


def _case_changed(token):
    out = [token.head + token.auth.swapcase(), "ttk" + token.text[3:]]
    return [v for v in out if v != token.text]


def _other_uid(token):
    return [f"TTK{token.uid + 1}:{token.pid}:{token.auth}",
            f"TTK0{token.uid}:{token.pid}:{token.auth}"]


def _other_pid(token):
    return [f"TTK{token.uid}:{token.pid + 1}:{token.auth}",
            f"TTK{token.uid}:0{token.pid}:{token.auth}"]


def _malformed(token):
    auth = token.auth
    urlsafe = auth.translate(str.maketrans("+/", "-_"))
    if urlsafe == auth:
        urlsafe = "-" + auth[1:]
    return [
        token.head + urlsafe,  # the URL-safe base64 alphabet
        token.head + auth[:-1] + "*",  # a character outside base64
        token.head + " " + auth,  # a blank inside
        token.text.replace(":", ";"),  # wrong separators
        auth,  # the secret alone (what the original README says is written)
    ]


VARIANTS = [
    ("prefix", _prefixes, "A proper prefix is refused",
     "no proper prefix of the token is accepted, whatever its length (token length - 1 "
     "down to 1 character, and nothing at all), each tried on a fresh token with the "
     "write side then shut (a strncmp over the bytes received accepts them)"),
    ("suffix", _suffixes, "A token with bytes appended is refused",
     "the token followed by A, =, a newline, a NUL or a NUL and junk is refused"),
    ("case-change", _case_changed, "A case-changed token is refused",
     "the token with the secret's letter case swapped, or with a lower-case ttk, is refused"),
    ("other-uid", _other_uid, "A token naming another uid is refused",
     "the token with uid + 1, or with a leading zero on the uid, is refused"),
    ("other-pid", _other_pid, "A token naming another pid is refused",
     "the token with pid + 1, or with a leading zero on the pid, is refused"),
    ("malformed", _malformed, "A malformed token is refused",
     "the token with the URL-safe alphabet, a non-base64 character, a blank, ';' "
     "separators, or the secret alone without TTK<uid>:<pid>: is refused"),
]


def _refuse_variants(make, name, ctx):
    """Each variant on its own fresh token: one attempt spends a token."""
    if target(ctx).source.one_shot:
        raise Skip("each variant needs its own fresh token; give --token-command CMD")
    minted = mint(ctx)
    count = len(make(minted.token))
    for i in range(count):
        if i:
            minted = mint(ctx)
        variants = make(minted.token)
        if i >= len(variants):
            break
        text = variants[i]
        expect_refused(ctx, attempt(ctx, minted, variant_of(minted, text)),
                       f"{name} {text!r}")


for _name, _make, _title, _what in VARIANTS:
    case(
        f"token.server.{_name}-refused",
        rule="T-S1",
        severity=Severity.MUST,
        title=_title,
        requirement=f"The server refuses a tampered token: {_what}.",
    )(partial(_refuse_variants, _make, _name))


# ------------------------------------------------------------------------ expiry


@case(
    "token.server.expiry",
    rule="T-S1",
    severity=Severity.MUST,
    title="An expired token is refused",
    requirement="Once the server's timeout (--expiry) has passed without a connection, the "
    "token is refused or its socket is gone.",
)
def expiry(ctx):
    t = target(ctx)
    if t.expiry is None:
        raise Skip("the server's token lifetime is unknown: give --expiry SECONDS "
                   f"(at most {MAX_EXPIRY_WAIT:g}) to run this case")
    if t.expiry > MAX_EXPIRY_WAIT:
        raise Skip(f"the server's token lifetime ({t.expiry:g} s) is longer than this case "
                   f"waits ({MAX_EXPIRY_WAIT:g} s); run the server with a shorter timeout")
    require(ctx, 1)
    minted = mint(ctx)
    wait = max(0.0, t.expiry + 1.0 - minted.age)
    ctx.note(f"waiting {wait:.1f} s for the token to expire (lifetime {t.expiry:g} s)")
    time.sleep(wait)
    present = socket_state(minted.socket) is not None
    ctx.note(f"after expiry the socket file is {'still there' if present else 'gone'}")
    expect_refused(ctx, attempt(ctx, minted, minted.token.raw, shutdown=False),
                   f"the token {minted.age:.1f} s after it was printed")
