"""The oracle: a grant is allowed only for the exact bytes of a known-valid request.

It judges what the server saw (the concatenated chunks of one connection), not what
the generator meant to send: a grant for anything but ``user\\npassword\\n`` of a
given pair, byte for byte, is a finding, however it was split.
"""

from __future__ import annotations

from dataclasses import dataclass

from pamconform.fuzz.model import Exec
from pamconform.fuzz.wire import Outcome
from pamconform.redirector.client import request
from pamconform.redirector.reply import original_module_grants


@dataclass(frozen=True)
class Violation:
    kind: str
    expected: str
    observed: str


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
            if exact:
                return None
            return Violation("grant", "a denial: the server saw bytes that are not exactly "
                             "a known-valid request", out.describe())
        if exact:
            return Violation("valid-denied", "a grant (b'0'): these are exactly the bytes of "
                             "a known-valid request", out.describe())
        if out.closed and not kind.denies and original_module_grants(out.reply):
            return Violation("original-grant", "a non-zero digit string (the original "
                             "pam_redirector reads an empty or non-numeric reply as a grant)",
                             out.describe())
        return None
