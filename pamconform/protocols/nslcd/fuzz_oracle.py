"""The nslcd fuzz oracle: judged from the bytes the daemon saw, never from the generator.

A *grant* is authc SUCCESS in a ``PAM_AUTHC`` reply (whatever action was asked) or
SUCCESS in a ``PAM_PWMOD`` reply. What was asked is read back from the bytes sent:

* they decode as one whole ``PAM_AUTHC``/``PAM_PWMOD`` request whose user (in any case:
  LDAP compares uids case-insensitively) and password are a given login's: *exact*, a
  grant is right (it must name that user);
* a blank user with an empty password (``asroot`` for pwmod) from a root peer is the
  administrator path (``rootpwmodpw``): not judged;
* equal to a login only once user and password are cut at their first NUL: ``nul-grant``
  (SHOULD: nobody gains, see N-S1);
* a whole login only if the last string, cut short by the client, is taken as complete:
  ``cut-grant`` (SHOULD: the client's own exact password, see N-S4);
* anything else (wrong version, unknown action, lying lengths, other passwords): ``grant``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from pamconform.fuzz.interface import Violation

from . import codec
from .fuzz_items import Exec
from .fuzz_wire import Outcome

#: Strings longer than this are never a login (the reader's bound when reading back).
MAX_FIELD = 1 << 24

EXACT, ADMIN, NUL, CUT, OTHER = "exact", "admin", "nul", "cut", "other"


def _credentials(req: codec.Request) -> tuple[bytes, bytes, bool] | None:
    """(user, password, asroot) of an authc or pwmod request, else None."""
    if isinstance(req, codec.AuthcRequest):
        return _b(req.context.username), _b(req.password), False
    if isinstance(req, codec.PwmodRequest):
        return _b(req.context.username), _b(req.old), req.asroot
    return None


def _b(value: codec.Text) -> bytes:
    return value.encode() if isinstance(value, str) else value


def _cut_read(payload: bytes) -> tuple[bytes, bytes, bool] | None:
    """(user, password, asroot) when the request is whole but for its last string, which
    the client cut short; None otherwise."""
    r = codec.Reader(payload, max_string=MAX_FIELD)
    try:
        if r.int32() != codec.VERSION:
            return None
        action = r.int32()
        if action not in (codec.Action.PAM_AUTHC, codec.Action.PAM_PWMOD):
            return None
        fields = [r.string() for _ in range(5)]
        asroot = bool(r.int32()) if action == codec.Action.PAM_PWMOD else False
        at = r.pos
        length = r.int32()
    except codec.DecodeError:
        return None
    rest = payload[at + 4:]
    if not 0 <= len(rest) < length:
        return None
    return fields[0], rest, asroot


class Oracle:
    """Judges attempts against the given logins."""

    def __init__(self, logins: Sequence[tuple[bytes, bytes]], *,
                 root_peer: bool | None = None) -> None:
        self.logins = tuple(logins)
        self.root_peer = os.geteuid() == 0 if root_peer is None else root_peer
        self.canonical = frozenset(
            codec.AuthcRequest(codec.PamContext(u), p).encode() for u, p in self.logins)

    def _match(self, user: bytes, password: bytes, asroot: bool) -> str:
        if asroot or user == b"":
            return ADMIN if password == b"" and self.root_peer else OTHER
        for u, p in self.logins:
            if user.lower() == u.lower() and password == p:
                return EXACT
        return OTHER

    def interpret(self, payload: bytes) -> tuple[str, bytes]:
        """How a grant to ``payload`` is classed, and the user it asked for."""
        try:
            req, _ = codec.decode_request(payload, max_string=MAX_FIELD)
        except codec.DecodeError:
            cut = _cut_read(payload)
            if cut is not None and self._match(*cut) in (EXACT, ADMIN):
                return CUT, cut[0]
            return OTHER, b""
        creds = _credentials(req)
        if creds is None:
            return OTHER, b""
        user, password, asroot = creds
        how = self._match(user, password, asroot)
        if how == OTHER and (b"\0" in user or b"\0" in password):
            cut_user, cut_pw = user.split(b"\0", 1)[0], password.split(b"\0", 1)[0]
            if self._match(cut_user, cut_pw, asroot) in (EXACT, ADMIN):
                return NUL, user
        return how, user

    def judge(self, ex: Exec, out: Outcome, timeout: float) -> Violation | None:
        payload = ex.payload
        granted = out.grant
        if granted is not None:
            return self._judge_grant(payload, out, granted)
        if out.kind == "refused":
            return None  # the engine's ``gone`` check decides
        if out.kind == "timeout":
            if ex.stalls:
                return Violation("idle", f"a close within {ex.stall_s:g} s of a client "
                                 "stalling inside a request", out.describe())
            held = f" while {len(ex.held)} clients stall" if ex.held else ""
            return Violation("hang", f"a reply or a close within {timeout:g} s of a whole "
                             f"request{held}", out.describe())
        if payload in self.canonical and not ex.stalls:
            return Violation("valid-denied", "authc SUCCESS: these are exactly the bytes "
                             "pam_ldap sends for a given login", out.describe())
        return None

    def _judge_grant(self, payload: bytes, out: Outcome, entry: codec.Entry) -> Violation | None:
        how, user = self.interpret(payload)
        if how == ADMIN:
            return None
        if how == EXACT:
            named = entry.username if isinstance(entry, codec.AuthcResult) else user
            if named.lower() != user.lower():
                return Violation("wrong-user", f"a grant naming {user!r} (who asked)",
                                 out.describe())
            return None
        if how == NUL:
            return Violation("nul-grant", "a refusal: the credentials equal a login only "
                             "up to a NUL byte", out.describe())
        if how == CUT:
            return Violation("cut-grant", "no grant before the last string arrives whole",
                             out.describe())
        return Violation("grant", "a refusal: not the exact credentials of a given login",
                         out.describe())
