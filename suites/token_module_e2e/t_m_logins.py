"""T-M1..T-M3 end to end: token logins through real su and sshd in the lab.

The unprivileged ``mallory`` runs ``su alice`` and types a token; ssh logs in as the
token's user. Tokens come from the reference token server run as their user.
"""

from functools import partial

from pamconform.core.outcome import Fail
from pamconform.core.registry import case_factory
from pamconform.core.verdicts import Severity
from pamconform.protocols.redirector.e2e_steps import (
    expect_bounded_denial,
    expect_denied,
    expect_granted,
    hang_watch,
)
from pamconform.protocols.token.e2e_steps import (
    NO_SERVER_PID,
    fake_server,
    fake_token,
    login,
    mint,
    no_server_time,
    received,
    target,
    uid,
)

case = case_factory(protocol="transient-token", kind="module")


def _valid(via, ctx):
    t = target(ctx)
    token = mint(t, "alice")
    expect_granted(login(ctx, via, "alice", token, "alice's fresh token"), "alice's token")


def _alive(ctx, why):
    t = target(ctx)
    token = mint(t, "alice")
    expect_granted(login(ctx, "su", "alice", token, f"valid token {why}"),
                   f"a valid token login {why}")


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
    _alive(ctx, "after another user's token")


@case(
    "token.e2e.planted-socket",
    rule="T-M2",
    severity=Severity.MUST,
    title="A socket planted by another user is never trusted",
    requirement="mallory binds /tmp/transient-token-<alice's uid>-<pid> and answers PASS; "
    "su alice with a token naming that path is refused, and the token never reaches it.",
)
def planted_socket(ctx):
    t = target(ctx)
    alice, pid = uid(t, "alice"), 4242
    path = f"/tmp/transient-token-{alice}-{pid}"
    fake_server(t, path, user="mallory", reply=b"PASS\n\0".hex(), mode="0777")
    token = fake_token(alice, pid)
    result = login(ctx, "su", "alice", token, "token naming mallory's socket")
    got = received(t, path)
    ctx.extra["planted_socket_received"] = repr(got)
    if token.encode() in got or got:
        raise Fail("nothing sent to a socket owned by another user", f"it received {got!r}")
    expect_denied(result, "a login through mallory's planted socket")
    _alive(ctx, "after a planted socket")


@case(
    "token.e2e.symlinked-socket",
    rule="T-M2",
    severity=Severity.MUST,
    title="A symlink at the token's path is not followed",
    requirement="mallory makes /tmp/transient-token-<alice's uid>-<pid> a symlink to her "
    "own PASS-answering socket; the login is refused and nothing is sent.",
)
def symlinked_socket(ctx):
    t = target(ctx)
    alice, pid = uid(t, "alice"), 4343
    real = "/tmp/pc-mallory-token.sock"
    path = f"/tmp/transient-token-{alice}-{pid}"
    fake_server(t, real, user="mallory", reply=b"PASS\n\0".hex(), mode="0777",
                via_symlink_from=path)
    result = login(ctx, "su", "alice", fake_token(alice, pid), "token naming a symlink")
    got = received(t, real)
    t.box.run(["rm", "-f", path], timeout=5)
    if got:
        raise Fail("nothing sent through a symlink", f"mallory's socket received {got!r}")
    expect_denied(result, "a login through a symlinked socket")


#: (id part, reply hex or "silent", what the server does)
ALICE_SERVERS = [
    ("garbage-reply", b"XXXXXX".hex(), "answers 6 bytes of garbage"),
    ("short-reply", b"PASS".hex(), "answers PASS without the newline and NUL"),
    ("hung-server", "silent", "reads the token and never answers"),
]


def _alice_server(reply, ctx):
    t = target(ctx)
    alice, pid = uid(t, "alice"), 4444
    path = f"/tmp/transient-token-{alice}-{pid}"
    path_s = no_server_time(ctx, "su")
    fake_server(t, path, user="alice", reply=reply)
    result = login(ctx, "su", "alice", fake_token(alice, pid), f"alice's server: {reply}",
                   timeout=hang_watch(t, path_s))
    expect_bounded_denial(ctx, result, "a login against a misbehaving token server", path_s)
    _alive(ctx, "after a misbehaving server")


for _name, _reply, _what in ALICE_SERVERS:
    case(
        f"token.e2e.{_name}",
        rule="T-M1",
        severity=Severity.MUST,
        title=f"Refused when the token server {_what}",
        requirement=f"When alice's token server {_what}, su alice is refused within the hang "
        "bound (--hang-bound, default the reference token module's timeout + 2 s) plus the "
        "time su itself takes to deny when no server listens.",
    )(partial(_alice_server, _reply))


@case(
    "token.e2e.no-server",
    rule="T-M1",
    severity=Severity.MUST,
    title="Refused when no server listens",
    requirement="A well-formed token of alice whose socket does not exist is refused.",
)
def no_server(ctx):
    t = target(ctx)
    result = login(ctx, "su", "alice", fake_token(uid(t, "alice"), NO_SERVER_PID), "no server")
    expect_denied(result, "a token with no server")


@case(
    "token.e2e.malformed-token",
    rule="T-M1",
    severity=Severity.MUST,
    title="Malformed tokens are refused",
    requirement="Tokens with a bad prefix, a signed or overflowing uid, or a short secret "
    "are refused, and su keeps working.",
)
def malformed_token(ctx):
    t = target(ctx)
    alice = uid(t, "alice")
    for token in (f"XTK{alice}:1:" + "A" * 32, f"TTK-{alice}:1:" + "A" * 32,
                  "TTK99999999999999999999:1:" + "A" * 32, f"TTK{alice}:1:short"):
        expect_denied(login(ctx, "su", "alice", token, f"malformed {token[:20]}"), token)
    _alive(ctx, "after malformed tokens")


@case(
    "token.e2e.su-survives-huge-token",
    rule="T-M3",
    severity=Severity.MUST,
    title="A huge token does not crash su",
    requirement="A 4,000-character token typed at su's prompt is refused with a normal "
    "denial (no crash, no hang), and su keeps working.",
)
def huge_token(ctx):
    t = target(ctx)
    token = f"TTK{uid(t, 'alice')}:1:" + "A" * 4000
    result = login(ctx, "su", "alice", token, "4,000-character token")
    expect_denied(result, "a huge token")
    if "Segmentation" in result.transcript or "core dumped" in result.transcript:
        raise Fail("no crash", result.transcript[-300:])
    _alive(ctx, "after a huge token")
