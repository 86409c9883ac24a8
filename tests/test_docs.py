"""The documentation the repository owns: every rule a case carries is defined in docs/."""

from __future__ import annotations

import re
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROTOCOLS_DOC = ROOT / "docs" / "protocols.md"

#: The rule families the profile defines; any of them named in the code must be documented.
RULE_FAMILY = re.compile(r"\b(?:R-[SM]|T-[SM]|STACK-)\d+\b")
#: The shape of any rule id (a new protocol may bring a new family).
RULE_ID = r"[A-Z]+(?:-[A-Z0-9]+)*-[A-Z]*\d+"
#: A rule id as a case declares it in a suite file: ``rule="R-S2"``.
DECLARED_RULE = re.compile(rf"""\brule=["']({RULE_ID})["']""")
#: Where the docs must never point: material outside the repository.
OUTSIDE = ("../shared", "shared/PROTOCOLS")


def _cli(*args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "pamconform.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"pamconform {' '.join(args)}: {proc.stderr.strip()}"
    return proc.stdout


def _protocols(side: str) -> list[str]:
    """The protocols ``pamconform SIDE`` offers, read from its --help."""
    match = re.search(r"--protocol \{([^}]*)\}", _cli(side, "--help"))
    assert match, f"pamconform {side} --help names no --protocol choices"
    return match.group(1).split(",")


def _listed_rules(text: str) -> set[str]:
    """The rule column of ``--list`` output (``ID RULE SEVERITY TITLE`` lines)."""
    rules = set()
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[2] in ("MUST", "SHOULD", "MAY"):
            rules.add(parts[1])
    return rules


@cache
def cli_rules() -> frozenset[str]:
    """Every rule id in ``--list`` of every side and protocol the CLI offers."""
    rules: set[str] = set()
    for side in ("server", "module"):
        for protocol in _protocols(side):
            listed = _listed_rules(_cli(side, "--protocol", protocol, "--list"))
            assert listed, f"pamconform {side} --protocol {protocol} --list listed no case"
            rules |= listed
    return frozenset(rules)


@cache
def source_rules() -> frozenset[str]:
    """Rule ids the cases declare in suites/ (incl. suites with no --list, e.g. the stack
    suite) and that the fuzzers and audit name in pamconform/."""
    rules: set[str] = set()
    for path in (ROOT / "suites").rglob("*.py"):
        rules |= set(DECLARED_RULE.findall(path.read_text()))
    for path in [*(ROOT / "suites").rglob("*.py"), *(ROOT / "pamconform").rglob("*.py")]:
        rules |= set(RULE_FAMILY.findall(path.read_text()))
    return frozenset(rules)


def defined_rules(text: str) -> set[str]:
    """Ids defined as an anchor (``<a id="R-S2">``) or as a heading that starts with the id.

    >>> sorted(defined_rules('<a id="R-S2"></a>\\n#### T-M1 · Fail closed\\nsee R-S3'))
    ['R-S2', 'T-M1']
    """
    anchors = re.findall(r"""<a\s+(?:id|name)=["']([^"']+)["']""", text)
    headings = re.findall(rf"^#{{1,6}}\s+({RULE_ID})\b", text, re.M)
    return {i for i in anchors + headings if re.fullmatch(RULE_ID, i)}


def test_cli_lists_cover_every_family() -> None:
    """A guard for the checks below: the lists they read are not empty or partial."""
    families = {re.sub(r"\d+$", "", r) for r in cli_rules() | source_rules()}
    assert {"R-S", "R-M", "T-S", "T-M", "STACK-"} <= families


def test_every_listed_rule_is_defined_in_protocols_doc() -> None:
    defined = defined_rules(PROTOCOLS_DOC.read_text())
    missing = sorted(cli_rules() - defined)
    assert not missing, f"rules in --list with no anchor or heading in docs/protocols.md: {missing}"


def test_every_rule_the_code_names_is_defined_in_protocols_doc() -> None:
    defined = defined_rules(PROTOCOLS_DOC.read_text())
    missing = sorted(source_rules() - defined)
    assert not missing, f"rules in suites/ or pamconform/ not defined in docs/protocols.md: " \
        f"{missing}"


def test_protocols_doc_defines_no_rule_that_no_case_carries() -> None:
    """A rule the docs define but no case checks is stale (or a case went missing)."""
    text = PROTOCOLS_DOC.read_text()
    stale = sorted(defined_rules(text) - cli_rules() - source_rules())
    assert not stale, f"docs/protocols.md defines rules no case carries: {stale}"


def test_protocols_doc_anchors_are_unique() -> None:
    anchors = re.findall(r"""<a\s+id=["']([^"']+)["']""", PROTOCOLS_DOC.read_text())
    twice = sorted({a for a in anchors if anchors.count(a) > 1})
    assert not twice, f"anchors defined twice: {twice}"


def _anchors(path: Path) -> set[str]:
    return set(re.findall(r"""<a\s+id=["']([^"']+)["']""", path.read_text()))


def test_docs_links_resolve() -> None:
    """Links between the pages of docs/ (``[R-S2](#R-S2)``, ``protocols.md#verdicts``)
    point at a page that exists and an anchor it defines."""
    broken = []
    for page in sorted((ROOT / "docs").glob("*.md")):
        for target, anchor in re.findall(r"\]\(([\w.-]*\.md)?(?:#([^)]+))?\)",
                                         page.read_text()):
            linked = page.parent / target if target else page
            if not linked.is_file() or (anchor and anchor not in _anchors(linked)):
                broken.append(f"{page.name}: {target}#{anchor}")
    assert not broken, f"links to undefined pages or anchors: {broken}"


def _outside_mentions(paths: list[Path]) -> list[str]:
    return [f"{p.relative_to(ROOT)}: {needle}" for p in paths for needle in OUTSIDE
            if needle in p.read_text()]


def test_docs_never_point_outside_the_repository() -> None:
    docs = sorted((ROOT / "docs").glob("*.md"))
    assert PROTOCOLS_DOC in docs
    assert not _outside_mentions(docs)


@pytest.mark.xfail(strict=True, reason="README still cites ../shared; fixed by the README "
                   "rewrite")
def test_readme_never_points_outside_the_repository() -> None:
    assert not _outside_mentions([ROOT / "README.md"])
