"""What a module target writes, from the protocol registry (no Docker)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pamconform import protocols
from pamconform.core.errors import UsageError
from pamconform.lab.module_target import ModuleSpec, ModuleTarget, uses_lab_socket
from pamconform.model import audit

TOKEN = protocols.get("token").name


def _line(spec: ModuleSpec) -> str:
    return ModuleTarget("t", box=None, spec=spec).module_line()  # type: ignore[arg-type]


def test_the_protocols_lab_arguments_are_added_unless_given() -> None:
    token = ModuleSpec(Path("."), so="pam_transient_token.so", args="", protocol=TOKEN)
    assert _line(token) == "auth required pam_transient_token.so timeout=3"
    token.args = "timeout=1 debug"
    assert _line(token) == "auth required pam_transient_token.so timeout=1 debug"
    assert _line(ModuleSpec(Path("."), args="{socket}")) == (
        "auth required pam_redirector.so /run/pam_redirector/socket")


def test_only_a_protocol_served_at_the_lab_socket_needs_it(tmp_path: Path) -> None:
    assert uses_lab_socket(protocols.DEFAULT) and not uses_lab_socket(TOKEN)
    with pytest.raises(UsageError, match="socket"):
        ModuleSpec(tmp_path, args="timeout=3").validate()
    ModuleSpec(tmp_path, so="pam_transient_token.so", args="", protocol=TOKEN).validate()


def test_audit_plan_points_the_socket_line_at_the_args_given(tmp_path: Path) -> None:
    """The plan is pure: the lab hands it each state's module arguments."""
    stack = tmp_path / "sshd"
    stack.write_text("auth required pam_redirector.so /s use_first_pass\n")
    plan = audit.plan(stack)
    files = plan.files_for("/run/x.sock timeout=0.5")
    assert files["/etc/pam.d/sshd"] == (
        b"auth required pam_redirector.so /run/x.sock timeout=0.5 use_first_pass\n")
    assert plan.probe_line(files, plan.socket, "/run/y.sock") == (
        "auth [default=ok] pam_redirector.so /run/y.sock use_first_pass")
