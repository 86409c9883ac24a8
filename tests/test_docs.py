"""The documentation the repository owns: every rule a case carries is defined in docs/."""

from __future__ import annotations

import re
import subprocess
import sys
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTOCOLS_DOC = ROOT / "docs" / "protocols.md"

#: The rule families the profile defines; any of them named in the code must be documented.
RULE_FAMILY = re.compile(r"\b(?:R-[SM]|T-[SM]|N-[SM]|STACK-)\d+\b")
#: The shape of any rule id (a new protocol may bring a new family).
RULE_ID = r"[A-Z]+(?:-[A-Z0-9]+)*-[A-Z]*\d+"
#: A rule id as a case declares it in a suite file: ``rule="R-S2"``.
DECLARED_RULE = re.compile(rf"""\brule=["']({RULE_ID})["']""")
#: A path that climbs with ``..``: it must stay inside the repository.
CLIMBING_PATH = re.compile(r"(?:\.\./)+[\w.-][\w./-]*")


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
    """Anchors a page defines: ``<a id=...>`` tags and GitHub's heading slugs.

    >>> sorted(_anchors_in('<a id="R-S2"></a>\\n## Exit codes\\n### The `model` (x.py)'))
    ['R-S2', 'exit-codes', 'the-model-xpy']
    """
    return _anchors_in(path.read_text())


def _anchors_in(text: str) -> set[str]:
    tags = re.findall(r"""<a\s+(?:id|name)=["']([^"']+)["']""", text)
    headings = re.findall(r"^#{1,6}\s+(.+?)\s*$", _without_fences(text), re.M)
    slugs = [re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings]
    return set(tags) | set(slugs)


def _without_fences(text: str) -> str:
    return re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)


def _without_code(text: str) -> str:
    """The text outside fenced code blocks, with inline code spans blanked."""
    return re.sub(r"`[^`\n]*`", "``", _without_fences(text))


#: A markdown link: ``[text](target)`` (the text may hold inline code).
LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")
README = ROOT / "README.md"


def user_pages() -> list[Path]:
    """The documentation a user reads: the README, docs/, and the READMEs of examples/
    and reports/."""
    return [README, *sorted((ROOT / "docs").glob("*.md")),
            *sorted((ROOT / "examples").rglob("README.md")), ROOT / "reports" / "README.md"]


def _link_broken(page: Path, target: str) -> bool:
    """A relative link of ``page`` to a file missing from the repository, or to an
    ``#anchor`` the linked page does not define (absolute URLs are not checked)."""
    if re.match(r"[a-z][a-z0-9+.-]*:", target):
        return False
    path, _, anchor = target.partition("#")
    linked = (page.parent / path).resolve() if path else page
    if not (linked == ROOT or ROOT in linked.parents) or not linked.exists():
        return True
    return bool(anchor) and linked.suffix == ".md" and anchor not in _anchors(linked)


def broken_links(page: Path) -> list[str]:
    return [f"{page.relative_to(ROOT)}: {target}"
            for target in LINK.findall(_without_code(page.read_text()))
            if _link_broken(page, target)]


def test_link_check_sees_broken_links() -> None:
    """A guard for the link check: it catches missing files, missing anchors and links
    that leave the repository, and skips code spans and URLs."""
    page = ROOT / "docs" / "protocols.md"
    good = "[a](report-format.md#findings) [b](#R-S2) [c](../README.md#exit-codes) " \
           "[d](https://example.org/x) `[e](nowhere.md)` [f](../suites)"
    bad = "[a](nowhere.md) [b](report-format.md#nowhere) [c](../../outside.md) [d](#nowhere)"
    good_links = LINK.findall(_without_code(good))
    assert len(good_links) == 5
    assert not [t for t in good_links if _link_broken(page, t)]
    bad_links = LINK.findall(_without_code(bad))
    assert [t for t in bad_links if _link_broken(page, t)] == bad_links
    assert len(bad_links) == 4


def test_docs_links_resolve() -> None:
    """Every relative link in the README and docs/ (``[R-S2](protocols.md#R-S2)``,
    ``[lab](docs/lab.md#distros)``) points at a file of the repository, and at an anchor
    the linked page defines."""
    broken = [b for page in user_pages() for b in broken_links(page)]
    assert not broken, f"links to missing files or anchors: {broken}"


def test_every_docs_page_is_linked_from_the_readme() -> None:
    linked = {(README.parent / t.partition("#")[0]).resolve()
              for t in LINK.findall(_without_code(README.read_text()))}
    orphans = sorted(p.name for p in (ROOT / "docs").glob("*.md") if p.resolve() not in linked)
    assert not orphans, f"docs/ pages the README does not link: {orphans}"


def test_readme_is_short_and_starts_with_the_two_commands() -> None:
    text = README.read_text()
    assert len(text.splitlines()) <= 250, "README.md is over 250 lines: move detail to docs/"
    first_block = re.search(r"^```sh\n(.*?)^```", text, re.M | re.S)
    assert first_block and text.index(first_block.group(0)) < 200
    commands = [line.split()[0] for line in first_block.group(1).splitlines() if line.strip()]
    assert commands == ["./scripts/conformance", "./scripts/test"]
    assert all((ROOT / c).is_file() for c in commands)


def _outside_mentions(paths: list[Path]) -> list[str]:
    """Paths a page names that resolve outside the repository (users have only this tree)."""
    return [f"{p.relative_to(ROOT)}: {m}" for p in paths
            for m in CLIMBING_PATH.findall(p.read_text(errors="replace"))
            if not (p.parent / m).resolve().is_relative_to(ROOT)]


def test_the_outside_check_catches_a_climbing_path(tmp_path: Path) -> None:
    page = ROOT / "docs" / "protocols.md"
    escape = "../" * (len(page.parent.relative_to(ROOT).parts) + 1) + "notes/x.md"
    probe = tmp_path / "p.md"
    probe.write_text(f"see {escape}")
    assert CLIMBING_PATH.findall(probe.read_text()) == [escape]
    assert not (page.parent / escape).resolve().is_relative_to(ROOT)


def test_docs_never_point_outside_the_repository() -> None:
    docs = sorted((ROOT / "docs").glob("*.md"))
    assert PROTOCOLS_DOC in docs
    assert not _outside_mentions(docs)


def test_readme_never_points_outside_the_repository() -> None:
    assert not _outside_mentions([README])


#: Where user-visible text lives: docs, docstrings, requirement texts, --help, comments.
SHIPPED = ("README.md", "docs", "pamconform", "suites", "servers", "modules", "containers",
           "examples", "benchmarks", "reports/README.md", "tests/fixtures")
#: A page name; an absolute path whose top directory is none a Debian host has by standard
#: (``/path/to/…`` and ``/abs/…`` are placeholders in examples).
PAGE_NAME = re.compile(r"\b[\w-]+\.md\b")
FOREIGN_ROOT = re.compile(r"(?<![\w.~/-])/(?!(?:bin|boot|dev|etc|home|lib|lib64|media|mnt"
                          r"|nonexistent|opt|proc|root|run|sbin|srv|sys|tmp|usr|var|path|abs)\b)"
                          r"[a-z][\w.-]*/[\w./-]+")
TEXT_SUFFIXES = (".py", ".md", ".c", ".h", ".txt", ".yml", ".json", ".sh", "")


def _shipped_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "-z", "--", *SHIPPED], cwd=ROOT, timeout=30,
                            capture_output=True, check=True).stdout.decode().split("\0")
    return [ROOT / name for name in listed
            if name and Path(name).suffix in TEXT_SUFFIXES and (ROOT / name).is_file()]


def _material_outside(path: Path, text: str, pages: set[str]) -> list[str]:
    """What ``text`` (in ``path``) names that users of this tree do not have: a page that
    exists nowhere in the repository, a climbing path that leaves it, or an absolute path
    outside the standard tree of a host (where a machine of the authors keeps its files)."""
    found = [m for m in PAGE_NAME.findall(text) if m not in pages]
    found += [m for m in CLIMBING_PATH.findall(text)
              if not (path.parent / m).resolve().is_relative_to(ROOT)]
    return found + FOREIGN_ROOT.findall(text)


@cache
def _pages() -> set[str]:
    return {p.name for p in _shipped_files() if p.suffix == ".md"}


def test_the_material_check_catches_names_of_what_users_lack() -> None:
    probe = ROOT / "docs" / "probe.md"
    text = ("see NOTES-1.md, ../../notes/x.txt and /data/notes/y; but docs/server.md, "
            "../README.md, /etc/pam.d/sshd, /tmp/demo/socket and a/b/c are here")
    assert _material_outside(probe, text, _pages()) == [
        "NOTES-1.md", "../../notes/x.txt", "/data/notes/y"]


def test_nothing_shipped_names_material_outside_the_repository() -> None:
    hits = []
    for path in _shipped_files():
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            for what in _material_outside(path, line, _pages()):
                hits.append(f"{path.relative_to(ROOT)}:{n}: {what}")
    assert not hits, "text that points at material users do not have:\n" + "\n".join(hits)
