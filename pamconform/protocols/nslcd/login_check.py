"""The up-front login check of the nslcd protocol: the ordinary user's login is granted.

A wrong password (or a daemon that cannot reach its directory) would otherwise show up
as a FAIL of nearly every case, each expecting the right password to be granted as its
control; here it is one line (UsageError, exit 2) that never shows the password.
"""

from __future__ import annotations

import time

from pamconform.core.errors import UsageError
from pamconform.core.preflight import LOGIN_TRIES, RETRY_PAUSE_S
from pamconform.core.wirelog import WireLog

from .server_steps import authc
from .target import NslcdTarget, Result


def check_login(target: NslcdTarget, *, tries: int = LOGIN_TRIES) -> None:
    """The right password of ``target.accounts.user`` must be granted (a few tries)."""
    a = target.accounts
    last: Result | None = None
    for attempt in range(tries):
        if attempt:
            time.sleep(RETRY_PAUSE_S)
        op = authc(target, a.user, a.password, f"login check: right password of {a.user}")
        last = target.run(WireLog(), [op])[0]
        if last.granted:
            return
        if last.answered:  # a refusal is an answer: trying again changes nothing
            break
    why = last.describe() if last is not None else "no try"
    raise UsageError(f"{target.name}: the daemon refused {a.user}'s login ({why}): check "
                     "--credentials (the first login is the ordinary user)")
