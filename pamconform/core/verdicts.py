"""Graded verdicts and severities, in the Autobahn style."""

from __future__ import annotations

from enum import StrEnum


class Verdict(StrEnum):
    """What a case concluded about the target."""

    PASS = "PASS"
    NON_STRICT = "NON-STRICT"
    FAIL = "FAIL"
    INFORMATIONAL = "INFORMATIONAL"
    SKIPPED = "SKIPPED"
    ERROR = "ERROR"
    #: The run was stopped (Ctrl-C, SIGTERM) while this case ran: no conclusion.
    INTERRUPTED = "INTERRUPTED"
    #: The run was stopped before this case started.
    NOT_RUN = "NOT-RUN"


class Severity(StrEnum):
    """How strong the requirement is (RFC 2119 words)."""

    MUST = "MUST"
    SHOULD = "SHOULD"
    MAY = "MAY"


#: Order used in summaries and to pick the worst verdict of a target.
VERDICT_ORDER = (
    Verdict.PASS,
    Verdict.NON_STRICT,
    Verdict.INFORMATIONAL,
    Verdict.SKIPPED,
    Verdict.FAIL,
    Verdict.ERROR,
    Verdict.INTERRUPTED,
    Verdict.NOT_RUN,
)

#: Verdicts of a stopped run: they say nothing about the target.
STOPPED = frozenset({Verdict.INTERRUPTED, Verdict.NOT_RUN})


def effective(verdict: Verdict, *, strict: bool) -> Verdict:
    """The verdict that counts: NON-STRICT becomes FAIL under ``--strict``.

    >>> effective(Verdict.NON_STRICT, strict=True)
    <Verdict.FAIL: 'FAIL'>
    """
    if strict and verdict is Verdict.NON_STRICT:
        return Verdict.FAIL
    return verdict
