"""pyproject.toml lists each package once, matching the tree, and the wheel carries it all."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]
#: The repository folders the wheel carries as data, and their package names.
BUNDLE = {"suites", "servers", "modules", "containers"}
BUILD_PRODUCTS = (".so", ".o", ".pyc")


def _tree_packages() -> set[str]:
    return {".".join(p.parent.relative_to(ROOT).parts)
            for p in (ROOT / "pamconform").rglob("__init__.py")}


def test_each_package_listed_once_and_matching_the_tree() -> None:
    listed = SETUPTOOLS["packages"]
    assert len(listed) == len(set(listed)), sorted(p for p in listed if listed.count(p) > 1)
    bundle = {f"pamconform.bundle.{name}" for name in BUNDLE}
    assert set(listed) == _tree_packages() | bundle


def test_bundle_folders_exist() -> None:
    dirs = SETUPTOOLS["package-dir"]
    assert dirs == {f"pamconform.bundle.{name}": name for name in BUNDLE}
    for folder in dirs.values():
        assert (ROOT / folder).is_dir(), folder


def _tracked_copy(dest: Path) -> None:
    """The files git tracks (as they are in the working tree): what a clean checkout holds."""
    out = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True,
                         timeout=60, check=True).stdout
    for rel in filter(None, out.decode().split("\0")):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def test_wheel_holds_every_package_and_bundled_file(tmp_path: Path) -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    src = tmp_path / "src"
    _tracked_copy(src)
    # build products a developer's tree holds must not ship
    (src / "modules" / "pam_redirector" / "pam_redirector.so").write_bytes(b"\x7fELF")
    (src / "suites" / "token_server" / "__pycache__").mkdir()
    (src / "suites" / "token_server" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"")
    try:
        subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "-w",
                        str(tmp_path / "wheel"), "--no-deps", "-q"],
                       capture_output=True, text=True, timeout=300, check=True)
    except subprocess.CalledProcessError as exc:
        pytest.fail(f"pip wheel failed:\n{exc.stdout}\n{exc.stderr}")
    (wheel,) = (tmp_path / "wheel").glob("pamconform-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for package in _tree_packages():
        assert package.replace(".", "/") + "/__init__.py" in names, package
    for folder in BUNDLE:
        for path in (src / folder).rglob("*"):
            rel = path.relative_to(src / folder).as_posix()
            shipped = f"pamconform/bundle/{folder}/{rel}"
            if path.is_file() and not rel.endswith(BUILD_PRODUCTS):
                assert shipped in names, shipped
    for suite in ("nslcd_server", "token_module_e2e", "pam_chain", "redirector_server"):
        assert any(n.startswith(f"pamconform/bundle/suites/{suite}/") for n in names), suite
    assert not [n for n in names if n.endswith(BUILD_PRODUCTS)]
