"""T-M2 end to end: a socket planted by another user is never trusted."""


from pamconform.core.outcome import Fail
from pamconform.core.registry import case_factory
from pamconform.core.verdicts import Severity
from pamconform.drivers.login_checks import (
    expect_denied,
)
from pamconform.protocols.token.e2e_steps import (
    expect_alive,
    fake_server,
    fake_token,
    login,
    received,
    target,
    uid,
)

case = case_factory(protocol="transient-token", kind="module")


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
    expect_alive(ctx, "after a planted socket")


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
