"""The up-front check of the transient-token protocol: a fresh token must be granted.

Tokens are single use, so this spends one of its own; the cases mint their own
afterwards. A refusal is one line (UsageError, exit 2) that never shows the token.
"""

from __future__ import annotations

import time

from pamconform.core.errors import UsageError
from pamconform.core.preflight import LOGIN_TRIES, RETRY_PAUSE_S, no_grant
from pamconform.core.wirelog import WireLog
from pamconform.protocols.token.client import ReplyKind, exchange
from pamconform.protocols.token.minting import MintFailed
from pamconform.protocols.token.target import TokenServerTarget


def check_token_command(target: TokenServerTarget) -> None:
    """A fresh token from the token command must be granted (the one ``--token`` is not
    checked: that would spend it)."""
    if target.source.one_shot:
        return
    why = "no try"
    for attempt in range(LOGIN_TRIES):
        if attempt:
            time.sleep(RETRY_PAUSE_S)
        try:
            minted = target.source.mint()
        except MintFailed as exc:
            raise UsageError(f"--token-command: {exc}") from None
        reply = exchange(minted.socket, WireLog(), minted.token.raw, timeout=target.timeout)
        if reply.grants:
            return
        why = (f"no connection: {reply.refused}" if reply.refused is not None
               else no_grant(reply.data, reply.timed_out, reply.elapsed_s))
        if reply.kind is ReplyKind.FAIL:
            break
    raise UsageError(f"the server refused a fresh token from --token-command ({why}): "
                     "check --token-command")
