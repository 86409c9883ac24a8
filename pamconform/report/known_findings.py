"""Known findings: FAILs a run records but does not fail on (``--known-findings FILE``).

A conformance run against software you do not maintain (a daemon from a distribution
package, say) can FAIL a case for a reason already reported upstream. Such a FAIL stays a
FAIL in the report; listing it as known only keeps it from setting the exit code, so CI
still fails on anything new. A known finding that no longer FAILs is said too, so the
list does not outlive the bug.

The file has one finding a line, ``TARGET CASE-ID``, and ``#`` comments::

    lab:pynslcd  nslcd.server.authz-expired   # pynslcd skips the shadow checks
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pamconform.core.errors import UsageError
from pamconform.core.redaction import Verbatim
from pamconform.core.runner import TargetResult
from pamconform.core.verdicts import Verdict

#: A findings list is a short hand-written file: refuse anything much larger.
MAX_BYTES = 64 * 1024


@dataclass(frozen=True)
class KnownFinding:
    """One line of the file: a case of a target that is known to FAIL."""

    target: str
    case: str
    note: str = ""


def load(path: Path) -> list[KnownFinding]:
    """Read a findings file; a malformed one is a usage error naming the line."""
    try:
        if not path.is_file():
            raise UsageError(f"--known-findings {path}: not a regular file")
        if path.stat().st_size > MAX_BYTES:
            raise UsageError(f"--known-findings {path}: larger than {MAX_BYTES} bytes")
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--known-findings {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"--known-findings {path}: not UTF-8 text") from None
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        body, _, note = line.partition("#")
        fields = body.split()
        if not fields:
            continue
        if len(fields) != 2:
            raise UsageError(f"--known-findings {path}:{number}: expected 'TARGET CASE-ID'")
        found.append(KnownFinding(fields[0], fields[1], note.strip()))
    return found


@dataclass
class Outcome:
    """Which known findings this run saw FAIL, and which it did not."""

    still_failing: list[KnownFinding]
    #: the findings whose case ran and did not FAIL, with the verdict it got instead (a
    #: finding whose target or case this run did not check is in neither list)
    not_failing: list[tuple[KnownFinding, Verdict]]

    def lines(self) -> list[tuple[str, ...]]:
        """What to say, a line each, in parts: the case id :class:`Verbatim`."""
        out: list[tuple[str, ...]] = []
        for k in self.still_failing:
            out.append((f"known finding, not counted: {k.target} ", Verbatim(k.case),
                        f" ({k.note})" if k.note else ""))
        for k, verdict in self.not_failing:
            if verdict is Verdict.PASS:
                out.append((f"known finding no longer FAILs: {k.target} ", Verbatim(k.case),
                            ": remove it from the list if it is fixed"))
            else:
                out.append((f"known finding did not FAIL this run: {k.target} ",
                            Verbatim(k.case), f": {verdict}"))
        return out


def apply(known: list[KnownFinding], targets: list[TargetResult]) -> tuple[list[TargetResult],
                                                                         Outcome]:
    """The targets with known FAILs left out (for the exit code), and what matched."""
    wanted = {(k.target, k.case): k for k in known}
    seen: set[tuple[str, str]] = set()
    other: dict[tuple[str, str], Verdict] = {}
    kept: list[TargetResult] = []
    for target in targets:
        results = []
        for result in target.results:
            key = (target.name, result.case.id)
            if key in wanted and result.verdict is Verdict.FAIL:
                seen.add(key)
                continue
            if key in wanted and result.verdict not in (Verdict.SKIPPED, Verdict.NOT_RUN):
                other[key] = result.verdict  # (a case SKIPPED, e.g. --no-lab, was not checked)
            results.append(result)
        kept.append(TargetResult(name=target.name, kind=target.kind, protocol=target.protocol,
                                 results=results))
    outcome = Outcome([k for key, k in wanted.items() if key in seen],
                      [(k, other[key]) for key, k in wanted.items() if key in other])
    return kept, outcome
