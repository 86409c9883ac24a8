"""Classify a redirector server's reply, and say how the original module would read it."""

from __future__ import annotations

import re
from enum import StrEnum


class ReplyKind(StrEnum):
    """What a reply means under the conformance profile (R-S1)."""

    GRANT = "grant"  # exactly b"0"
    GRANT_NEWLINE = "grant+newline"  # b"0\n": tolerated, non-strict
    DENY = "deny"  # a non-zero decimal digit string
    DENY_NEWLINE = "deny+newline"  # the same followed by b"\n": tolerated, non-strict
    EMPTY = "empty"  # the server closed without replying
    MALFORMED = "malformed"  # anything else

    @property
    def grants(self) -> bool:
        return self in (ReplyKind.GRANT, ReplyKind.GRANT_NEWLINE)

    @property
    def denies(self) -> bool:
        return self in (ReplyKind.DENY, ReplyKind.DENY_NEWLINE)

    @property
    def strict(self) -> bool:
        return self in (ReplyKind.GRANT, ReplyKind.DENY)


_DENY = re.compile(rb"[0-9]*[1-9][0-9]*")


def classify(reply: bytes) -> ReplyKind:
    """Classify a complete reply (everything read until the server closed).

    >>> [classify(r).value for r in (b"0", b"1\\n", b"00")]
    ['grant', 'deny+newline', 'malformed']
    """
    if reply == b"":
        return ReplyKind.EMPTY
    if reply == b"0":
        return ReplyKind.GRANT
    if reply == b"0\n":
        return ReplyKind.GRANT_NEWLINE
    body, newline = (reply[:-1], True) if reply.endswith(b"\n") else (reply, False)
    if _DENY.fullmatch(body):
        return ReplyKind.DENY_NEWLINE if newline else ReplyKind.DENY
    return ReplyKind.MALFORMED


_ATOI = re.compile(rb"[ \t\n\v\f\r]*([+-]?[0-9]*)")


def original_module_grants(reply: bytes) -> bool:
    """Whether the original pam_redirector would grant on this reply.

    It does one read of at most 4 bytes and passes it to ``atoi()``; 0 grants, so an
    empty reply and any non-numeric reply grant as well.

    >>> original_module_grants(b""), original_module_grants(b"1"), original_module_grants(b"OK")
    (True, False, True)
    """
    head = reply[:4].split(b"\0", 1)[0]
    match = _ATOI.match(head)
    digits = match.group(1) if match else b""
    digits = digits.lstrip(b"+-")
    return not digits or int(digits) == 0
