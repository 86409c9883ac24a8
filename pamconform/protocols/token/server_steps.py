"""Shared steps and checkers of the token server suite.

Every token is single use, so each attempt mints its own.  Every checker fails the
same way (``Fail(expected, actual)``).
"""

from __future__ import annotations

import time
from pathlib import Path

from pamconform.core.context import CaseContext
from pamconform.core.outcome import Fail
from pamconform.core.redaction import shown_data
from pamconform.protocols.token.client import FAIL_REPLY, TokenReply, exchange, socket_state
from pamconform.protocols.token.minting import Minted
from pamconform.protocols.token.target import TokenServerTarget


def target(ctx: CaseContext) -> TokenServerTarget:
    """The server under test (typed)."""
    return ctx.target  # type: ignore[no-any-return]


def require(ctx: CaseContext, count: int) -> None:
    """Skip now unless ``count`` fresh tokens can be had (``--token`` gives one)."""
    target(ctx).source.require(count)


def mint(ctx: CaseContext) -> Minted:
    """A fresh token; the evidence names it (it is dead once the case has used it)."""
    minted = target(ctx).source.mint()
    ready = "" if minted.ready else " (socket file not seen)"
    ctx.note(f"minted {minted.token.text} -> {minted.socket}{ready}")
    return minted


def attempt(
    ctx: CaseContext,
    minted: Minted,
    payload: bytes | list[bytes],
    *,
    shutdown: bool = True,
    pause: float = 0.0,
    timeout: float | None = None,
) -> TokenReply:
    """Present ``payload`` on the socket of ``minted``'s server and read the reply.

    By default the write side is shut after the payload, so a server waiting for more
    bytes sees the end of the attempt at once.
    """
    t = target(ctx)
    return exchange(minted.socket, ctx.log, payload, timeout=t.timeout if timeout is None
                    else timeout, pause=pause, shutdown=shutdown)


def expect_pass(ctx: CaseContext, reply: TokenReply, what: str) -> None:
    """The reply must be ``PASS\\n\\0`` (trailing bytes are non-strict)."""
    if reply.grants:
        if len(reply.data) > 6:
            ctx.non_strict(f"{what}: bytes after PASS\\n\\0: {shown_data(reply.data, 160)}")
        return
    raise Fail(f"{what} to be accepted with b'PASS\\n\\x00'", reply.describe())


def expect_refused(ctx: CaseContext, reply: TokenReply, what: str) -> None:
    """Anything but a grant: FAIL, a close, a reset, or no socket at all."""
    if reply.grants:
        raise Fail(f"{what} to be refused", f"accepted: {reply.describe()}")
    ctx.note(f"{what}: {reply.describe()}")


def expect_fail_reply(ctx: CaseContext, reply: TokenReply, what: str) -> None:
    """Refused, and the refusal should be the FAIL reply (other forms are non-strict)."""
    expect_refused(ctx, reply, what)
    if reply.refused is None and reply.data != FAIL_REPLY:
        ctx.non_strict(f"{what}: refused without the FAIL\\n\\0 reply ({reply.describe()})")


def wait_gone(path: Path, timeout: float) -> bool:
    """Whether the file at path disappears within timeout."""
    deadline = time.monotonic() + timeout
    while socket_state(path) is not None:
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def variant_of(minted: Minted, text: str) -> bytes:
    """A tampered token as bytes (ASCII)."""
    assert text != minted.token.text, "a variant must differ from the token"
    return text.encode("latin-1")
