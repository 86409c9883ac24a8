"""The oracle: a grant is allowed only for the exact bytes of a known-valid request.

It judges what the server saw (the concatenated chunks of one connection), not what
the generator meant to send: a grant for anything but ``user\\npassword\\n`` of a
given pair, byte for byte, is a finding, however it was split.

Bytes after the second newline (R-S2), graded by what an attacker can gain: the
request ends at the second newline, and a server may answer there. Bytes in the same
write as that newline arrive with the request, so a server should deny them; granting
them is a SHOULD finding (``trailing-grant``), as the password before them still had
to be exact. Bytes of later writes are not part of the request and are not judged
(granted or denied, both are right). A stalled client (no close, no half-close, an
incomplete request) is owed no answer: the server may close without a reply, but it
must not grant.
"""

from __future__ import annotations

from pamconform.fuzz.interface import Violation
from pamconform.protocols.redirector.client import request
from pamconform.protocols.redirector.fuzz_items import Exec
from pamconform.protocols.redirector.fuzz_wire import Outcome
from pamconform.protocols.redirector.reply import original_module_grants


def request_parts(ex: Exec) -> tuple[bytes, bytes, bytes] | None:
    """Split what is sent at the second newline: (the request up to and including it,
    the rest of the write that carries it, the bytes of later writes); None if there is
    no second newline.

    >>> request_parts(Exec((b"a\\nb", b"\\nx", b"y")))
    (b'a\\nb\\n', b'x', b'y')
    """
    before = b""
    seen = 0
    for k, chunk in enumerate(ex.chunks):
        pos = -1
        while seen < 2 and (pos := chunk.find(b"\n", pos + 1)) >= 0:
            seen += 1
        if seen == 2:
            return before + chunk[: pos + 1], chunk[pos + 1 :], b"".join(ex.chunks[k + 1 :])
        before += chunk
    return None


class Oracle:
    """Judges one connection's outcome against the known-valid pairs."""

    def __init__(self, credentials: list[tuple[bytes, bytes]]) -> None:
        self.valid = frozenset(request(u, p) for u, p in credentials)

    def exact(self, payload: bytes) -> bool:
        return payload in self.valid

    def judge(self, ex: Exec, out: Outcome) -> Violation | None:
        """The violation this outcome shows, or None. A refused connect is not judged
        here (the engine probes whether the server is gone)."""
        if out.refused:
            return None
        payload = ex.payload
        exact = payload in self.valid
        if out.timed_out and not out.reply:
            if ex.complete:
                return Violation("hang", "a reply within the timeout to a complete request",
                                 out.describe())
            return None  # a stalled client is not owed an answer
        kind = out.kind
        if kind.grants:
            return None if exact else self._judge_grant(ex, out)
        if exact:
            return Violation("valid-denied", "a grant (b'0'): these are exactly the bytes of "
                             "a known-valid request", out.describe())
        if not ex.complete and not out.reply:
            return None  # a stalled client closed without a reply: right
        if out.closed and not kind.denies and original_module_grants(out.reply):
            return Violation("original-grant", "a non-zero digit string (the original "
                             "pam_redirector reads an empty or non-numeric reply as a grant)",
                             out.describe())
        return None

    def _judge_grant(self, ex: Exec, out: Outcome) -> Violation | None:
        """A grant for bytes that are not exactly a valid request."""
        parts = request_parts(ex)
        if parts is not None and parts[0] in self.valid:
            if not parts[1]:
                return None  # only bytes of later writes follow: not judged
            return Violation("trailing-grant", "a denial: a valid request followed by more "
                             "bytes in the same write", out.describe())
        return Violation("grant", "a denial: the server saw bytes that are not exactly "
                         "a known-valid request", out.describe())
