"""How a case body reports: raise Fail/Skip, or mark non-strict/informational on the context."""

from __future__ import annotations


class Fail(Exception):
    """The target broke the requirement. Reads the same way in every case."""

    def __init__(self, expected: str, actual: str, hint: str = "") -> None:
        self.expected, self.actual, self.hint = expected, actual, hint
        text = f"expected {expected}; got {actual}"
        super().__init__(f"{text}. {hint}" if hint else text)


class Skip(Exception):
    """The case does not apply to this target or cannot be checked here."""
