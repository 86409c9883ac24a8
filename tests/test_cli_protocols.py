"""The CLI finds protocols only through the registry: each protocol's hooks module is
complete, ``--protocol`` offers what the registry holds, and core grades a protocol's
"could not reach the target" error without knowing the protocol."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from pamconform import protocols
from pamconform.cli.main import build_parser, main
from pamconform.cli.run import plan, reference_module_spec
from pamconform.core.context import CaseContext
from pamconform.core.errors import TargetUnreachable
from pamconform.core.registry import Case
from pamconform.core.runner import grade
from pamconform.core.verdicts import Severity, Verdict
from pamconform.protocols.hooks import Hooks, hooks_of

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("protocol", protocols.all_protocols(), ids=lambda p: p.name)
def test_every_protocol_has_a_complete_hooks_module(protocol: protocols.Protocol) -> None:
    assert isinstance(hooks_of(protocol), Hooks)


def test_a_hooks_module_missing_a_member_is_refused() -> None:
    broken = protocols.Protocol("x", "x", ("X-",), {}, hooks="pamconform.protocols.hooks")
    with pytest.raises(TypeError, match="missing REFERENCE_MODULE_TARGET"):
        hooks_of(broken)


def _choices(command: str) -> list[str]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    action = next(a for a in sub.choices[command]._actions if a.dest == "protocol")
    return list(action.choices or [])


def test_protocol_choices_come_from_the_registry() -> None:
    assert _choices("server") == [p.name for p in protocols.with_suites("server")]
    assert _choices("module") == [p.name for p in protocols.with_suites("module")]
    assert set(_choices("server")) == set(protocols.names())


def test_unreachable_target_of_any_protocol_is_a_fail() -> None:
    class NoDaemon(TargetUnreachable):
        """What a new protocol's client raises."""

    case = Case("x.server.y", "X-S1", Severity.MUST, "t", "r", "x", "server", lambda c: None,
                "x")
    verdict, message = grade(case, CaseContext(target=None), NoDaemon("/run/x: refused"))
    assert verdict is Verdict.FAIL
    assert message == "the server could not be reached: /run/x: refused"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pamconform.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)


def test_a_protocol_without_a_source_module_is_one_line_exit_2() -> None:
    listed = _cli("module", "--protocol", "nslcd", "--list")
    assert listed.returncode == 0 and "nslcd.module." in listed.stdout
    proc = _cli("module", "--protocol", "nslcd", "/tmp/pc-nothing-here")
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "pamconform: error: --protocol nslcd builds no module from source: its module "
        "targets are lab packages (--lab-package libpam-ldapd)")


def test_the_token_protocol_takes_no_credentials() -> None:
    proc = _cli("server", "--protocol", "transient-token", "--token-command", "true",
                "--credentials", "a:bbbb")
    assert proc.returncode == 2 and "--credentials is not used" in proc.stderr


def _args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["run", *argv])


def test_run_plans_each_protocol_s_reference_targets_in_report_order() -> None:
    from pamconform.cli.console import Console

    steps = plan(_args(), Console(), ["bookworm"])
    assert [(s.name, s.kind, s.protocol) for s in steps] == [
        ("lab:nslcd", "server", "nslcd"),
        ("lab:pynslcd", "server", "nslcd"),
        ("reference-server", "server", "redirector"),
        ("reference-token-server", "server", "transient-token"),
        ("lab libpam", "stack", "redirector"),
        ("reference-module", "module", "redirector"),
        ("reference-token-module", "module", "transient-token"),
        ("lab:pam_ldap", "module", "nslcd"),
    ]
    no_lab = plan(_args("--no-lab", "--gallery"), Console(), ["bookworm"])
    # only the lab packages' targets remain of the lab, listed as skipped
    assert [s.name for s in no_lab if s.kind == "module"] == ["lab:pam_ldap"]
    assert any(s.name.startswith("faulty:") for s in no_lab)


def test_run_builds_the_reference_modules_from_their_profiles() -> None:
    red = reference_module_spec(protocols.get("redirector"), 4.0)
    assert (red.so, red.args, red.protocol, red.bound) == (
        "pam_redirector.so", "{socket} timeout=3", "redirector", 4.0)
    tok = reference_module_spec(protocols.get("transient-token"))
    assert (tok.so, tok.args, tok.protocol, tok.bound) == (
        "pam_transient_token.so", "", "transient-token", 7.0)
    assert tok.src.name == "pam_transient_token"


def test_module_so_defaults_to_the_protocol_s_reference_module(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from pamconform.core.runner import TargetResult
    from pamconform.lab import module_run

    seen = []

    def fake(spec, cases, *, name, **_kw):  # type: ignore[no-untyped-def]
        seen.append(spec)
        return TargetResult(name=name, kind="module", protocol=spec.protocol)

    monkeypatch.setattr(module_run, "run_module", fake)
    assert main(["module", str(tmp_path), "--protocol", "transient-token", "--quiet",
                 "--report", str(tmp_path / "r")]) == 0
    assert (seen[0].so, seen[0].args) == ("pam_transient_token.so", "")


def test_a_new_protocol_is_one_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder with a profile.py under protocols/ is found with no list to edit."""
    from pamconform import protocols

    folder = tmp_path / "toyproto"
    folder.mkdir()
    (folder / "__init__.py").write_text('"""A toy protocol."""\n')
    (folder / "profile.py").write_text(
        "from pamconform.protocols import Protocol, register\n"
        "PROTOCOL = register(Protocol(name='toy', title='toy', rules=('X-S',),\n"
        "                             suites={'server': ('toy_server',)}, hooks='toy.hooks'))\n")
    protocols.names()  # the bundled ones are loaded
    monkeypatch.setattr(protocols, "__path__", [*protocols.__path__, str(tmp_path)])
    monkeypatch.setattr(protocols, "_REGISTRY", dict(protocols._REGISTRY))
    monkeypatch.setattr(protocols, "_loaded", False)
    try:
        assert "toy" in protocols.names()
        assert protocols.for_rule("X-S1") is protocols.get("toy")
        assert protocols.with_suites("server")  # the bundled ones are still there
        assert {"redirector", "nslcd"} <= set(protocols.names())
    finally:
        sys.modules.pop("pamconform.protocols.toyproto.profile", None)
        sys.modules.pop("pamconform.protocols.toyproto", None)
