"""Encode nslcd requests and decode nslcd replies (the PAM actions and CONFIG_GET).

Wire format (every integer a big-endian signed 32-bit word, every string an int32 byte
count followed by that many bytes, no terminator)::

    request  = VERSION  action  parameters...
    reply    = VERSION  action  { RESULT_BEGIN entry }*  RESULT_END

The decoder never trusts a length it reads: each string is bounded by ``max_string``, each
reply by ``max_results`` entries, and a short buffer raises :class:`Truncated` (so a
reader can tell "need more bytes" from "this is wrong"). Standard library only.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field
from typing import ClassVar

#: The protocol version word both sides send first (nss-pam-ldapd 0.9.x).
VERSION = 0x00000002
RESULT_BEGIN = 1
RESULT_END = 2

#: Default bounds for decoding. nslcd's own buffers are far smaller (names of 256 bytes,
#: messages of 1 KiB); these only stop a hostile peer from making the reader allocate.
MAX_STRING = 4096
MAX_RESULTS = 16

_INT32 = struct.Struct(">i")


class Action(enum.IntEnum):
    """Request codes used by pam_ldap (the NSS lookups are not modelled here)."""

    CONFIG_GET = 0x00010001
    PAM_AUTHC = 0x000D0001
    PAM_AUTHZ = 0x000D0002
    PAM_SESS_O = 0x000D0003
    PAM_SESS_C = 0x000D0004
    PAM_PWMOD = 0x000D0005


class PamCode(enum.IntEnum):
    """The PAM result codes nslcd puts in replies (Linux-PAM's numbering)."""

    SUCCESS = 0
    PERM_DENIED = 6
    AUTH_ERR = 7
    CRED_INSUFFICIENT = 8
    AUTHINFO_UNAVAIL = 9
    USER_UNKNOWN = 10
    MAXTRIES = 11
    NEW_AUTHTOK_REQD = 12
    ACCT_EXPIRED = 13
    SESSION_ERR = 14
    AUTHTOK_ERR = 20
    AUTHTOK_DISABLE_AGING = 23
    IGNORE = 25
    ABORT = 26
    AUTHTOK_EXPIRED = 27


#: CONFIG_GET option asked by pam_ldap before a password change.
CONFIG_PAM_PASSWORD_PROHIBIT_MESSAGE = 1


def code_name(code: int) -> str:
    """``SUCCESS``/``AUTH_ERR``/… for a known code, else the number."""
    try:
        return PamCode(code).name
    except ValueError:
        return str(code)


# -- errors --------------------------------------------------------------------------------
class DecodeError(ValueError):
    """The bytes are not a valid reply (or not yet a complete one: :class:`Truncated`)."""


class Truncated(DecodeError):
    """The buffer ends inside the reply; more bytes may complete it."""


class WrongVersion(DecodeError):
    """The first word is not :data:`VERSION`."""


class WrongAction(DecodeError):
    """The reply names another action than the request."""


class BadMarker(DecodeError):
    """A word where RESULT_BEGIN or RESULT_END belongs holds something else."""


class BadLength(DecodeError):
    """A string length is negative or above the decoder's bound."""


class TooManyResults(DecodeError):
    """More result entries than the decoder's bound."""


# -- encoding ------------------------------------------------------------------------------
Text = str | bytes


def _as_bytes(value: Text) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value


def int32(value: int) -> bytes:
    """One big-endian signed 32-bit word (``value`` must fit)."""
    return _INT32.pack(value)


def string(value: Text) -> bytes:
    """A length-prefixed string (str is UTF-8 encoded)."""
    raw = _as_bytes(value)
    return int32(len(raw)) + raw


def header(action: int, version: int = VERSION) -> bytes:
    """The two words that open every request and every reply."""
    return int32(version) + int32(action)


@dataclass(frozen=True)
class PamContext:
    """The five strings every PAM request starts with."""

    username: Text
    service: Text = "pamconform"
    ruser: Text = ""
    rhost: Text = ""
    tty: Text = ""

    def encode(self) -> bytes:
        return b"".join(
            string(v) for v in (self.username, self.service, self.ruser, self.rhost, self.tty)
        )


@dataclass(frozen=True)
class Request:
    """Base of the typed requests: ``encode()`` gives the full request bytes."""

    action: ClassVar[Action]

    def body(self) -> bytes:
        raise NotImplementedError

    def encode(self, version: int = VERSION) -> bytes:
        return header(self.action, version) + self.body()


@dataclass(frozen=True)
class AuthcRequest(Request):
    """PAM_AUTHC: check ``password`` for the context's user (a blank user means rootpwmoddn)."""

    action: ClassVar[Action] = Action.PAM_AUTHC
    context: PamContext
    password: Text = field(repr=False, default="")

    def body(self) -> bytes:
        return self.context.encode() + string(self.password)


@dataclass(frozen=True)
class AuthzRequest(Request):
    """PAM_AUTHZ: may the user use the service (account checks)."""

    action: ClassVar[Action] = Action.PAM_AUTHZ
    context: PamContext

    def body(self) -> bytes:
        return self.context.encode()


@dataclass(frozen=True)
class SessionOpenRequest(Request):
    """PAM_SESS_O: a session opens; the reply carries a session id."""

    action: ClassVar[Action] = Action.PAM_SESS_O
    context: PamContext

    def body(self) -> bytes:
        return self.context.encode()


@dataclass(frozen=True)
class SessionCloseRequest(Request):
    """PAM_SESS_C: the session with ``session_id`` closes."""

    action: ClassVar[Action] = Action.PAM_SESS_C
    context: PamContext
    session_id: Text = ""

    def body(self) -> bytes:
        return self.context.encode() + string(self.session_id)


@dataclass(frozen=True)
class PwmodRequest(Request):
    """PAM_PWMOD: change the password (``asroot``: bind as rootpwmoddn with ``old``)."""

    action: ClassVar[Action] = Action.PAM_PWMOD
    context: PamContext
    asroot: bool = False
    old: Text = field(repr=False, default="")
    new: Text = field(repr=False, default="")

    def body(self) -> bytes:
        return (self.context.encode() + int32(1 if self.asroot else 0)
                + string(self.old) + string(self.new))


@dataclass(frozen=True)
class ConfigGetRequest(Request):
    """CONFIG_GET: one configuration value (pam_ldap asks for the prohibit message)."""

    action: ClassVar[Action] = Action.CONFIG_GET
    option: int = CONFIG_PAM_PASSWORD_PROHIBIT_MESSAGE

    def body(self) -> bytes:
        return int32(self.option)


# -- reply entries -------------------------------------------------------------------------
@dataclass(frozen=True)
class AuthcResult:
    """One PAM_AUTHC entry: the bind's verdict, the canonical user name, account verdict."""

    authc: int
    username: bytes
    authz: int
    message: bytes

    @property
    def granted(self) -> bool:
        return self.authc == PamCode.SUCCESS


@dataclass(frozen=True)
class CodeResult:
    """One PAM_AUTHZ or PAM_PWMOD entry: a PAM code and a message."""

    code: int
    message: bytes

    @property
    def granted(self) -> bool:
        return self.code == PamCode.SUCCESS


@dataclass(frozen=True)
class SessionResult:
    """One PAM_SESS_O entry: the session id."""

    session_id: bytes


@dataclass(frozen=True)
class EmptyResult:
    """One PAM_SESS_C entry (RESULT_BEGIN directly followed by the end)."""


@dataclass(frozen=True)
class ConfigResult:
    """One CONFIG_GET entry: the option's value."""

    value: bytes


Entry = AuthcResult | CodeResult | SessionResult | EmptyResult | ConfigResult


@dataclass(frozen=True)
class Reply:
    """A decoded reply: its action and its entries (none means "no such user/answer")."""

    action: int
    entries: tuple[Entry, ...]

    @property
    def entry(self) -> Entry | None:
        """The first entry, if any (PAM actions carry at most one)."""
        return self.entries[0] if self.entries else None


# -- decoding ------------------------------------------------------------------------------
class Reader:
    """A cursor over a byte buffer that checks every length before using it."""

    def __init__(self, data: bytes, *, max_string: int = MAX_STRING) -> None:
        self.data = data
        self.pos = 0
        self.max_string = max_string

    def int32(self) -> int:
        end = self.pos + 4
        if end > len(self.data):
            raise Truncated(f"need 4 bytes at offset {self.pos}, have {len(self.data) - self.pos}")
        (value,) = _INT32.unpack_from(self.data, self.pos)
        self.pos = end
        return int(value)

    def string(self) -> bytes:
        at = self.pos
        length = self.int32()
        if length < 0:
            raise BadLength(f"negative string length {length} at offset {at}")
        if length > self.max_string:
            raise BadLength(f"string length {length} at offset {at} exceeds {self.max_string}")
        end = self.pos + length
        if end > len(self.data):
            raise Truncated(f"string of {length} bytes at offset {at} is cut short")
        value = self.data[self.pos:end]
        self.pos = end
        return value


def _entry(action: int, r: Reader) -> Entry:
    if action == Action.PAM_AUTHC:
        return AuthcResult(r.int32(), r.string(), r.int32(), r.string())
    if action in (Action.PAM_AUTHZ, Action.PAM_PWMOD):
        return CodeResult(r.int32(), r.string())
    if action == Action.PAM_SESS_O:
        return SessionResult(r.string())
    if action == Action.PAM_SESS_C:
        return EmptyResult()
    if action == Action.CONFIG_GET:
        return ConfigResult(r.string())
    raise WrongAction(f"no reply shape known for action 0x{action:08x}")


def decode_reply(
    data: bytes,
    expect: int,
    *,
    max_string: int = MAX_STRING,
    max_results: int = MAX_RESULTS,
) -> tuple[Reply, int]:
    """Decode the reply to action ``expect`` at the start of ``data``.

    Returns the reply and the number of bytes it used (anything after is the caller's to
    judge). Raises :class:`Truncated` when ``data`` ends too early, another
    :class:`DecodeError` when it can never become a valid reply.
    """
    r = Reader(data, max_string=max_string)
    version = r.int32()
    if version != VERSION:
        raise WrongVersion(f"version word 0x{version & 0xFFFFFFFF:08x}, expected 0x{VERSION:08x}")
    action = r.int32()
    if action != expect:
        raise WrongAction(f"reply action 0x{action & 0xFFFFFFFF:08x}, expected 0x{expect:08x}")
    entries: list[Entry] = []
    while True:
        marker = r.int32()
        if marker == RESULT_END:
            return Reply(action, tuple(entries)), r.pos
        if marker != RESULT_BEGIN:
            raise BadMarker(f"word {marker} where RESULT_BEGIN or RESULT_END belongs")
        if len(entries) >= max_results:
            raise TooManyResults(f"more than {max_results} result entries")
        entries.append(_entry(action, r))


def encode_reply(action: int, entries: tuple[Entry, ...] | list[Entry],
                 version: int = VERSION) -> bytes:
    """The bytes a daemon sends for ``entries`` (for scripted servers and round trips)."""
    parts = [header(action, version)]
    for e in entries:
        parts.append(int32(RESULT_BEGIN))
        if isinstance(e, AuthcResult):
            parts += [int32(e.authc), string(e.username), int32(e.authz), string(e.message)]
        elif isinstance(e, CodeResult):
            parts += [int32(e.code), string(e.message)]
        elif isinstance(e, SessionResult):
            parts.append(string(e.session_id))
        elif isinstance(e, ConfigResult):
            parts.append(string(e.value))
    parts.append(int32(RESULT_END))
    return b"".join(parts)


def decode_request(data: bytes, *, max_string: int = MAX_STRING) -> tuple[Request, int]:
    """Decode one PAM/CONFIG_GET request (for scripted daemons); bytes used as second item."""
    r = Reader(data, max_string=max_string)
    version = r.int32()
    if version != VERSION:
        raise WrongVersion(f"version word 0x{version & 0xFFFFFFFF:08x}")
    action = r.int32()
    req: Request
    if action == Action.CONFIG_GET:
        req = ConfigGetRequest(r.int32())
        return req, r.pos
    if action not in (Action.PAM_AUTHC, Action.PAM_AUTHZ, Action.PAM_SESS_O,
                      Action.PAM_SESS_C, Action.PAM_PWMOD):
        raise WrongAction(f"unknown action 0x{action & 0xFFFFFFFF:08x}")
    ctx = PamContext(r.string(), r.string(), r.string(), r.string(), r.string())
    if action == Action.PAM_AUTHC:
        req = AuthcRequest(ctx, r.string())
    elif action == Action.PAM_AUTHZ:
        req = AuthzRequest(ctx)
    elif action == Action.PAM_SESS_O:
        req = SessionOpenRequest(ctx)
    elif action == Action.PAM_SESS_C:
        req = SessionCloseRequest(ctx, r.string())
    else:
        asroot = r.int32()
        req = PwmodRequest(ctx, asroot != 0, r.string(), r.string())
    return req, r.pos
