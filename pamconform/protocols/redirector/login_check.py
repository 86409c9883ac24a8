"""The up-front login check of the redirector protocol: each given login must be granted.

A wrong password would otherwise show up as a FAIL of every case; here it is one line
(UsageError, exit 2) that never shows the password.
"""

from __future__ import annotations

import time
from pathlib import Path

from pamconform.core.credentials import Login, show_user
from pamconform.core.errors import UsageError
from pamconform.core.preflight import LOGIN_TRIES, RETRY_PAUSE_S, no_grant
from pamconform.core.wirelog import WireLog
from pamconform.protocols.redirector.client import ConnectFailed, exchange, request

#: What a login check that got no reply at all says instead of blaming the password.
NO_REPLY = ("the module writes user\\npassword\\n and reads the reply without closing "
            "its side: does the server wait for the client's end of input?")


def check_logins(path: Path, logins: list[Login], timeout: float, *,
                 tries: int = LOGIN_TRIES) -> None:
    """Each login must be granted (at most ``tries`` tries of ``timeout`` each)."""
    for user, password in logins:
        why = login_refused(path, user, password, timeout, tries=tries)
        if why is not None:
            raise UsageError(f"the server refused {show_user(user)}'s login ({why}): "
                             + (NO_REPLY if why.startswith("no reply") else
                                "check --credentials"))


def login_refused(path: Path | str, user: bytes, password: bytes, timeout: float, *,
                  tries: int = LOGIN_TRIES) -> str | None:
    """None if the server grants this login, else what it replied the last time
    (never the password)."""
    why = "no try"
    for attempt in range(tries):
        if attempt:
            time.sleep(RETRY_PAUSE_S)
        try:
            reply = exchange(path, WireLog(), request(user, password), timeout=timeout)
        except (ConnectFailed, OSError) as exc:
            why = f"no connection: {exc}"
            continue
        if reply.kind.grants:
            return None
        why = no_grant(reply.data, reply.timed_out, reply.elapsed_s)
        if reply.kind.denies:
            break
    return why
