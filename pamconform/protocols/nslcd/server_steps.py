"""Steps the N-S cases are written in: build requests, make exchanges, grade replies.

A *grant* is a reply whose first code is ``SUCCESS`` (authc for ``PAM_AUTHC``, the code
for ``PAM_AUTHZ``/``PAM_PWMOD``): what lets pam_ldap's step succeed. A *clean refusal*
is a reply with a non-success code or no entry. A close or reset without a reply keeps
everyone out too, but pam_ldap then reports an error instead of a refusal, so where the
profile asks for an answer it is graded NON-STRICT; a reply that never comes is "hung".
"""

from __future__ import annotations

import time
from typing import Any

from pamconform.core.outcome import Fail, Skip
from pamconform.core.wirelog import WireLog

from . import codec
from .target import NOBODY, LdapControlUnavailable, NslcdTarget, Op, Result

__all__ = ["NOBODY", "Op", "Result", "alive", "ask", "authc", "authz", "expect_answered",
           "expect_granted", "expect_refused", "ldap", "pam_request", "raw", "target",
           "until_granted"]


def target(ctx: Any) -> NslcdTarget:
    t = ctx.target
    if not isinstance(t, NslcdTarget):
        raise Skip("not an nslcd daemon target")
    return t


def pam_request(action: int, user: str | bytes, tail: bytes = b"", *,
                version: int = codec.VERSION) -> bytes:
    """The bytes of a PAM request: header, the five context strings, then ``tail``."""
    return codec.header(action, version) + codec.PamContext(user).encode() + tail


def authc(t: NslcdTarget, user: str | bytes, password: bytes, label: str, *,
          uid: int | None = None, timeout: float | None = None, delay: float = 0.0) -> Op:
    body = pam_request(codec.Action.PAM_AUTHC, user, codec.string(password))
    return Op(label, (body,), codec.Action.PAM_AUTHC, timeout or t.timeout, delay=delay,
              uid=uid)


def authz(t: NslcdTarget, user: str, label: str, *, timeout: float | None = None) -> Op:
    return Op(label, (pam_request(codec.Action.PAM_AUTHZ, user),), codec.Action.PAM_AUTHZ,
              timeout or t.timeout)


def raw(label: str, chunks: list[bytes] | tuple[bytes, ...], timeout: float, *,
        expect: int = codec.Action.PAM_AUTHC, pause: float = 0.0, delay: float = 0.0,
        uid: int | None = None) -> Op:
    return Op(label, tuple(chunks), expect, timeout, pause=pause, delay=delay, uid=uid)


def ask(ctx: Any, *ops: Op, parallel: bool = False) -> list[Result]:
    return target(ctx).run(ctx.log, ops, parallel=parallel)


def until_granted(t: NslcdTarget, log: WireLog, limit: float, label: str) -> Result:
    """The account's right password, asked once a second until it is granted or ``limit``
    seconds have passed (each try bounded by the target's LDAP limit): the last answer."""
    a = t.accounts
    deadline = time.monotonic() + limit
    tries = 0
    while True:
        tries += 1
        r = t.run(log, [authc(t, a.user, a.password, f"{label} (try {tries})",
                              timeout=t.ldap_limit)])[0]
        if r.granted or time.monotonic() >= deadline:
            return r
        time.sleep(1)


def expect_answered(ctx: Any, r: Result, what: str) -> None:
    """No reply and no close within the exchange's timeout is a hang: FAIL."""
    if r.kind == "timeout":
        raise Fail(f"an answer or a close for {what} within {r.op.timeout:g} s",
                   f"hung: {r.describe()}")
    if r.kind in ("connect", "harness"):
        raise Fail(f"the daemon reachable for {what}", r.describe())


def expect_refused(ctx: Any, r: Result, what: str, *, clean: bool = True, hint: str = "") -> None:
    """Never a grant. With ``clean``, a close instead of a refusing reply is NON-STRICT."""
    ctx.note(f"{what}: {r.describe()}")
    if r.granted:
        raise Fail(f"no grant for {what}", r.describe(), hint)
    expect_answered(ctx, r, what)
    if clean and r.kind in ("closed", "reset", "malformed", "too-large"):
        ctx.non_strict(f"{what} was refused by a {r.kind} connection, not a refusing reply "
                       "(nobody gets in, but pam_ldap reports an error instead of a refusal)")


def expect_granted(ctx: Any, r: Result, what: str) -> None:
    """A positive control: a daemon that refuses everything must not pass the case."""
    ctx.note(f"{what}: {r.describe()}")
    if not r.granted:
        raise Fail(f"{what} granted (control)", r.describe(),
                   "the case cannot judge refusals of a daemon that grants nothing")


def alive(ctx: Any, after: str) -> None:
    """The daemon still serves: the right password is granted after ``after``."""
    t = target(ctx)
    a = t.accounts
    r = ask(ctx, authc(t, a.user, a.password, f"right password of {a.user} after {after}"))[0]
    ctx.note(f"after {after}, the right password: {r.describe()}")
    if not r.granted:
        raise Fail(f"the daemon still serving after {after} (the right password granted)",
                   r.describe(), "a request a local user can send must not stop the daemon")


def ldap(ctx: Any, command: str) -> None:
    """Steer the directory (``stop``/``start``/``pause``/``resume``), or skip the case."""
    t = target(ctx)
    try:
        t.ldap(command)
    except LdapControlUnavailable as exc:
        raise Skip(str(exc)) from None
    ctx.note(f"directory: {command}")
