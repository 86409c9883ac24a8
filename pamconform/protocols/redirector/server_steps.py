"""Shared steps and checkers of the redirector server suite.

Every checker fails the same way (``Fail(expected, actual)``), so all failures read
alike, and names how the original pam_redirector module would take the reply.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from pamconform.core.context import IDLE_MARGIN_S, CaseContext, ServerTarget
from pamconform.core.outcome import Fail
from pamconform.core.wirelog import WireLog
from pamconform.protocols.redirector.client import Connection, Reply, exchange, request
from pamconform.protocols.redirector.reply import ReplyKind, original_module_grants

POLARITY_HINT = (
    "pam_redirector's README says the server replies 1 for success, but the module's "
    "code and its example server treat 0 as success: a server written from the README "
    "is inverted against the real module (it refuses right passwords and grants wrong ones)"
)


def target(ctx: CaseContext) -> ServerTarget:
    """The server under test (typed)."""
    return ctx.target  # type: ignore[no-any-return]


def ask(
    ctx: CaseContext,
    payload: bytes | list[bytes],
    *,
    pause: float = 0.0,
    shutdown: bool = False,
    timeout: float | None = None,
    log: WireLog | None = None,
) -> Reply:
    """Send raw bytes (or chunks) on a fresh connection and read the reply (logged in
    ``log``, by default the case's wire log)."""
    t = target(ctx)
    return exchange(
        t.socket,
        ctx.log if log is None else log,
        payload,
        timeout=t.timeout if timeout is None else timeout,
        pause=pause,
        shutdown=shutdown,
    )


def login(ctx: CaseContext, user: bytes, password: bytes, log: WireLog | None = None) -> Reply:
    """One well-formed request, as the module sends it."""
    return ask(ctx, request(user, password), log=log)


#: Connections a case keeps open at once when it sends many independent requests.
WORKERS = 4


def logins(ctx: CaseContext, pairs: Sequence[tuple[bytes, bytes]],
           workers: int = WORKERS) -> list[Reply]:
    """Well-formed requests, at most ``workers`` at once; the replies in order.

    A connection that fails raises (``ConnectFailed``) as :func:`login` would.
    """
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(lambda pair: login(ctx, *pair), pairs))


#: Where a stalling client stops: nothing sent, half the user name, or the user line
#: and half the password (never a second newline).
STALLS = ("silent", "mid-user", "mid-password")


def stall_bytes(place: str, user: bytes, password: bytes) -> bytes:
    """What a client that stalls at ``place`` has sent.

    >>> [stall_bytes(p, b"alice", b"s3cret") for p in STALLS]
    [b'', b'al', b'alice\\ns3c']
    """
    if place == "silent":
        return b""
    if place == "mid-user":
        return user[: max(1, len(user) // 2)]
    # half, rounded up: the part a report marks (shorter fragments are left as words)
    return user + b"\n" + password[: max(1, (len(password) + 1) // 2)]


def open_stall(ctx: CaseContext, place: str) -> Connection:
    """A connection that sent the bytes of a client stalling at ``place``, then stops."""
    t = target(ctx)
    conn = Connection(t.socket, ctx.log, t.timeout)
    sent = stall_bytes(place, t.user, t.password)
    if sent:
        conn.send(sent)
    return conn


def idle_wait(ctx: CaseContext) -> float:
    """How long a case waits for the server to drop an idle or stalled client."""
    return target(ctx).idle_limit + IDLE_MARGIN_S


def wait_out_stall(ctx: CaseContext, conn: Connection, waited: float = 0.0) -> Reply:
    """Everything the server sends a stalled client until it closes, or until --idle-limit
    (and :data:`IDLE_MARGIN_S`, less ``waited`` seconds already spent) has passed."""
    return conn.read_reply(max(0.1, idle_wait(ctx) - waited))


def expect_stall_denied(ctx: CaseContext, reply: Reply, what: str) -> None:
    """A stalled client is never granted; a denial or a close without reply is right."""
    if reply.kind.grants:
        raise Fail(f"{what} to be closed without a grant", reply.describe())
    if not reply.data:
        ctx.note(f"{what}: {reply.describe()}")
        return
    expect_deny(ctx, reply, what)


def stranger(tag: str = "x") -> bytes:
    """A user name or password that no server knows."""
    return f"pc-{tag}-{secrets.token_hex(6)}".encode()


def wrong_password(password: bytes) -> bytes:
    """A password that is certainly not the right one."""
    other = stranger("pw")
    return other if other != password else other + b"!"


def _original(reply: Reply) -> str:
    reads = "GRANT" if original_module_grants(reply.data) else "deny"
    return f"the original pam_redirector would read this as a {reads}"


def expect_grant(ctx: CaseContext, reply: Reply, what: str) -> None:
    """The reply must be exactly ``0`` (``0\\n`` is tolerated as non-strict)."""
    kind = reply.kind
    if kind is ReplyKind.GRANT:
        return
    if kind is ReplyKind.GRANT_NEWLINE:
        ctx.non_strict(f"{what}: replied 0 followed by a newline, not exactly 0")
        return
    hint = ""
    if kind.denies and getattr(ctx.target, "logins_checked", False):
        hint = ("This login was granted when the run started, so the refusal is the "
                "server's doing: a lock-out after the run's wrong passwords? A lock-out is "
                "the server's policy, but the suite needs logins it does not lock "
                "(docs/server.md#lock-outs)")
    elif kind.denies and reply.data.strip() == b"1":
        hint = "If the credentials given are right, the server may use README polarity: " + (
            POLARITY_HINT
        )
    raise Fail(f"{what} to be granted with exactly b'0'", reply.describe(), hint)


def expect_deny(ctx: CaseContext, reply: Reply, what: str, *, strict_format: bool = False) -> None:
    """The reply must not grant; a proper denial is a non-zero digit string.

    With ``strict_format`` an empty, malformed or missing reply fails (R-S1); otherwise
    it is non-strict, since a conforming module denies it but the original does not
    always.
    """
    kind = reply.kind
    if kind.grants:
        raise Fail(f"{what} to be denied", reply.describe())
    if kind is ReplyKind.DENY:
        return
    if kind is ReplyKind.DENY_NEWLINE:
        ctx.non_strict(f"{what}: denial followed by a newline, not a bare digit string")
        return
    problem = f"{what}: no proper denial, {reply.describe()}; {_original(reply)}"
    if strict_format:
        raise Fail(f"{what} to be denied with a non-zero digit string", reply.describe(),
                   _original(reply))
    ctx.non_strict(problem)


def expect_alive(ctx: CaseContext, why: str) -> None:
    """After abuse, the server still grants the right password and denies a wrong one."""
    t = target(ctx)
    expect_grant(ctx, login(ctx, t.user, t.password), f"a valid login {why}")
    expect_deny(ctx, login(ctx, t.user, wrong_password(t.password)), f"a wrong password {why}")
