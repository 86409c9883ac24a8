"""The import rules of docs/ARCHITECTURE.md, checked on the source (ast, no import)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "pamconform"

#: part -> parts it must never import (the table in docs/ARCHITECTURE.md)
FORBIDDEN: dict[str, set[str]] = {
    "core": {"lab", "drivers", "cli", "fuzz", "report", "model", "protocols", "plugin"},
    "model": {"lab", "drivers", "cli", "fuzz", "report", "protocols", "plugin"},
    "report": {"lab", "drivers", "cli", "fuzz", "model", "protocols", "plugin"},
    "fuzz": {"cli", "plugin"},
    "lab": {"cli", "plugin", "report"},
    "drivers": {"cli", "plugin", "report", "fuzz"},
    "protocols": {"cli", "plugin", "report"},
    "plugin": {"cli"},
}
#: the pure (codec) modules of a protocol: nothing from lab, drivers or cli
CODEC_MODULES = re.compile(r"protocols/[a-z_]+/(codec|client|reply|profile|fuzz_model)\.py$")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return {n for n in names if n == "pamconform" or n.startswith("pamconform.")}


def _part(module: str) -> str | None:
    bits = module.split(".")
    return bits[1] if len(bits) > 1 else None


def _part_of(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0].removesuffix(".py")


def _files(part: str) -> list[Path]:
    base = PACKAGE / part
    return sorted(base.rglob("*.py")) if base.is_dir() else [PACKAGE / f"{part}.py"]


@pytest.mark.parametrize("part", sorted(FORBIDDEN))
def test_part_imports_only_what_it_may(part: str) -> None:
    bad = []
    for path in _files(part):
        for module in _imports(path):
            target = _part(module)
            if target in FORBIDDEN[part]:
                bad.append(f"{path.relative_to(ROOT)} imports {module}")
    assert not bad, "\n".join(bad)


def test_protocol_codecs_import_no_lab_drivers_or_cli() -> None:
    bad = []
    for path in sorted((PACKAGE / "protocols").rglob("*.py")):
        if CODEC_MODULES.search(path.as_posix()):
            bad += [f"{path.relative_to(ROOT)} imports {m}" for m in _imports(path)
                    if _part(m) in {"lab", "drivers", "cli"}]
    assert not bad, "\n".join(bad)


def test_suites_never_import_the_cli() -> None:
    bad = [f"{p.relative_to(ROOT)} imports {m}" for p in sorted((ROOT / "suites").rglob("*.py"))
           for m in _imports(p) if _part(m) in {"cli", "plugin"}]
    assert not bad, "\n".join(bad)


def test_servers_are_standard_library_only() -> None:
    bad = [f"{p.relative_to(ROOT)} imports {m}" for p in sorted((ROOT / "servers").rglob("*.py"))
           for m in _imports(p)]
    assert not bad, "\n".join(bad)


def test_lab_does_not_print() -> None:
    bad = []
    for path in _files("lab"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not bad, "the lab reports progress through a callback: " + ", ".join(bad)


def test_no_protocol_name_outside_protocols() -> None:
    """cli, run, the plugin, the fuzzer and the lab find protocols only through the registry."""
    names = re.compile(r"""["'](redirector|transient-token|nslcd)["']""")
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] == "protocols":
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if names.search(line):
                bad.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not bad, "\n".join(bad)


def test_suites_import_only_their_own_protocol() -> None:
    """A suite uses core, drivers, lab and its protocol: never another protocol's steps."""
    from pamconform import protocols

    owner = {folder: p.name.split("-")[0] for p in protocols.all_protocols()
             for folders in p.suites.values() for folder in folders}
    package = {p.name.split("-")[0]: p.hooks.split(".")[2] for p in protocols.all_protocols()}
    bad = []
    for folder, proto in sorted(owner.items()):
        for path in sorted((ROOT / "suites" / folder).rglob("*.py")):
            for module in _imports(path):
                bits = module.split(".")
                if len(bits) > 2 and bits[1] == "protocols" and bits[2] != package[proto]:
                    bad.append(f"{path.relative_to(ROOT)} imports {module}")
    assert not bad, "\n".join(bad)
