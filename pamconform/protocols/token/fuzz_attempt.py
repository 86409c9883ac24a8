"""One token fuzz attempt: a case applied to a fresh token, written as planned, judged."""

from __future__ import annotations

import time
from dataclasses import dataclass

from pamconform.core.redaction import shown_data
from pamconform.core.wirelog import WireLog
from pamconform.fuzz.interface import Violation
from pamconform.protocols.token.client import ConnectFailed, Connection, TokenReply
from pamconform.protocols.token.fuzz_cases import TokenCase, apply
from pamconform.protocols.token.minting import Minted, Token

#: Once 6 reply bytes are in and the server keeps the connection open, stop waiting.
SETTLE_S = 0.1


@dataclass
class Attempt:
    """One executed case: the token it was made of, what was sent, what came back."""

    token: Token
    payload: bytes
    chunks: int
    shutdown: bool
    reply: TokenReply
    log: WireLog

    @property
    def exact(self) -> bool:
        return self.payload == self.token.raw


def execute(minted: Minted, case: TokenCase, timeout: float) -> Attempt:
    """Apply the case to the fresh token, write it as planned, read the reply."""
    token = minted.token
    payload = apply(case.transform, token)
    chunks, pauses, shutdown = case.delivery.plan(payload, len(token.raw))
    log = WireLog()
    try:
        conn = Connection(minted.socket, log, timeout)
    except ConnectFailed as exc:
        ready = "" if minted.ready else " (the socket file never appeared)"
        reply = TokenReply(b"", refused=f"{exc}{ready}")
        return Attempt(token, payload, len(chunks), shutdown, reply, log)
    with conn:
        try:
            for k, chunk in enumerate(chunks):
                if not conn.send(chunk):
                    break
                if pauses[k] > 0:
                    time.sleep(pauses[k])
            if shutdown and not conn.broken:
                conn.shutdown_write()
            reply = conn.read_reply(settle=SETTLE_S)
        except OSError as exc:  # anything Connection does not already turn into a reply
            log.add(conn.conn, "error", str(exc))
            reply = TokenReply(b"", reset=True, sent_all=False)
    return Attempt(token, payload, len(chunks), shutdown, reply, log)


def judge(att: Attempt, timeout: float) -> Violation | None:
    """The oracle: PASS only for the exact fresh token, always, and in time."""
    r = att.reply
    if r.refused is not None:
        return Violation("unreachable", "a connection to the fresh token's socket",
                         r.describe())
    if r.grants:
        if att.exact:
            return None
        return Violation("grant", "a refusal: these bytes are not exactly the fresh token",
                         f"{r.describe()} for {shown_data(att.payload, 160)}")
    if not r.data and r.timed_out:
        return Violation("hang", f"a reply or a close within {timeout:g} s of a complete "
                         "attempt", r.describe())
    if att.exact:
        return Violation("exact-refused", "PASS\\n\\0: these are exactly the fresh token's "
                         "bytes", r.describe())
    return None
