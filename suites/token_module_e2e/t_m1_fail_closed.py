"""T-M1 end to end: token logins through real su and sshd fail closed.

The unprivileged ``mallory`` runs ``su alice`` and types a token; ssh logs in as the
token's user. Tokens come from the reference token server run as their user.
"""

from functools import partial

from pamconform.core.registry import case_factory
from pamconform.core.verdicts import Severity
from pamconform.drivers.login_checks import (
    expect_bounded_denial,
    expect_denied,
    expect_granted,
    hang_watch,
)
from pamconform.protocols.token.e2e_steps import (
    NO_SERVER_PID,
    expect_alive,
    fake_server,
    fake_token,
    login,
    mint,
    no_server_time,
    target,
    uid,
)

case = case_factory(protocol="transient-token", kind="module")


def _valid(via, ctx):
    t = target(ctx)
    token = mint(t, "alice")
    expect_granted(login(ctx, via, "alice", token, "alice's fresh token"), "alice's token")


for _via in ("su", "ssh"):
    case(
        f"token.e2e.{_via}-valid-token-granted",
        rule="T-M1",
        severity=Severity.MUST,
        title=f"A fresh token of the user logs in ({_via})",
        requirement=f"A token minted by alice's own token server logs alice in through {_via}.",
    )(partial(_valid, _via))


@case(
    "token.e2e.other-users-token-refused",
    rule="T-M1",
    severity=Severity.MUST,
    title="Another user's token is refused",
    requirement="bob's valid token does not log in alice (the token's uid must be the "
    "user's).",
)
def other_users_token(ctx):
    t = target(ctx)
    token = mint(t, "bob")
    expect_denied(login(ctx, "su", "alice", token, "bob's token for alice"), "bob's token")
    expect_alive(ctx, "after another user's token")


#: (id part, reply hex or "silent", what the server does, the token's pid part: each
#: case its own socket path, so the cases run side by side)
ALICE_SERVERS = [
    ("garbage-reply", b"XXXXXX".hex(), "answers 6 bytes of garbage", 4444),
    ("short-reply", b"PASS".hex(), "answers PASS without the newline and NUL", 4445),
    ("hung-server", "silent", "reads the token and never answers", 4446),
]
#: the pid part of the malformed tokens (above any real pid, within what a token may
#: name): alice's socket there answers PASS to anything
MALFORMED_PID = 2_000_004_447


def _alice_server(reply, pid, ctx):
    t = target(ctx)
    alice = uid(t, "alice")
    path = f"/tmp/transient-token-{alice}-{pid}"
    path_s = no_server_time(ctx, "su")
    fake_server(t, path, user="alice", reply=reply)
    result = login(ctx, "su", "alice", fake_token(alice, pid), f"alice's server: {reply}",
                   timeout=hang_watch(t, path_s))
    expect_bounded_denial(ctx, result, "a login against a misbehaving token server", path_s)
    expect_alive(ctx, "after a misbehaving server")


for _name, _reply, _what, _pid in ALICE_SERVERS:
    case(
        f"token.e2e.{_name}",
        # the hang is timed: the other logins of the target do not run beside it
        exclusive="target" if _reply == "silent" else (),
        rule="T-M1",
        severity=Severity.MUST,
        title=f"Refused when the token server {_what}",
        requirement=f"When alice's token server {_what}, su alice is refused within the hang "
        "bound (--hang-bound, default the reference token module's timeout + 2 s) plus the "
        "time su itself takes to deny when no server listens.",
    )(partial(_alice_server, _reply, _pid))


@case(
    "token.e2e.no-server",
    rule="T-M1",
    severity=Severity.MUST,
    title="Refused when no server listens",
    requirement="A well-formed token of alice whose socket does not exist is refused; a "
    "valid token still logs in afterwards.",
)
def no_server(ctx):
    t = target(ctx)
    result = login(ctx, "su", "alice", fake_token(uid(t, "alice"), NO_SERVER_PID), "no server")
    expect_denied(result, "a token with no server")
    expect_alive(ctx, "after a token with no server")


@case(
    "token.e2e.malformed-token",
    rule="T-M1",
    severity=Severity.MUST,
    title="Malformed tokens are refused",
    requirement="Tokens with a bad prefix, a signed uid, a uid that wraps around to "
    "alice's, or a short or non-base64 secret are refused, though each names a socket of "
    "alice's that answers PASS to anything; su keeps working.",
)
def malformed_token(ctx):
    t = target(ctx)
    alice = uid(t, "alice")
    # a lenient parser that reads uid and pid out of these asks this server, and it grants
    fake_server(t, f"/tmp/transient-token-{alice}-{MALFORMED_PID}", user="alice",
                reply=b"PASS\n\0".hex(), many=True)
    secret, pid = "A" * 32, MALFORMED_PID
    for token in (f"XTK{alice}:{pid}:{secret}", f"TTK+{alice}:{pid}:{secret}",
                  f"TTK-{alice}:{pid}:{secret}", f"TTK{alice + 2 ** 32}:{pid}:{secret}",
                  f"TTK{alice}:{pid}:short", f"TTK{alice}:{pid}:{'A' * 31}!"):
        expect_denied(login(ctx, "su", "alice", token, f"malformed {token[:24]}"), token)
    expect_alive(ctx, "after malformed tokens")
