# ruff: noqa: RUF002  (the docstring shows the marker's quotation marks)
"""What a report says whatever secrets it was given: pamconform's own words, and numbers.

A piece of a password that is one of these words (``password``, ``counter``) or a short
run of a number (a year, a count, a time) is there by coincidence. Marking it would tell
a reader which word or digits the password holds (``the wrong ‹password of bob›[:8]``
gives away that bob's password starts with "password"), so
:mod:`pamconform.core.redaction` leaves such a piece of prose as it is (:func:`ordinary`;
never in data, where the word may be what the harness sent of the password). The
words are read once from pamconform's own sources (the package, its suites and servers).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from pamconform.core import resources

#: A run of digits is ordinary when a piece covers fewer of its digits than this: four or
#: five digits of a password turn up in any report's times and counts, six rarely do.
SHORT_DIGITS = 6
_WORD = re.compile(r"[A-Za-z]{2,}")


@functools.cache
def words() -> frozenset[str]:
    """Every word (two letters or more, lower case) in pamconform's own Python sources."""
    found: set[str] = set()
    roots = (Path(__file__).resolve().parents[1], resources.suites_dir(),
             resources.servers_dir())
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            try:
                text = path.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            found.update(w.lower() for w in _WORD.findall(text))
    return frozenset(found)


def ordinary(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` lies inside one letter-and-digit run that is one of
    :func:`words`, or digits of which it covers fewer than :data:`SHORT_DIGITS`. A piece
    reaching across a space or a sign (``test-password-202``) is never ordinary."""
    if start >= end or not text[start:end].isalnum():
        return False
    left, right = start, end
    while left > 0 and text[left - 1].isalnum():
        left -= 1
    while right < len(text) and text[right].isalnum():
        right += 1
    token = text[left:right]
    if token.isdigit():
        return end - start < SHORT_DIGITS
    return token.lower() in words()
