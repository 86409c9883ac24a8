"""The stack audit of Debian's common-auth with pam_ldap (examples/stacks/ldap/, N-M5).

The socket module is found through the protocol registry (``extra["pam_modules"]``); the
model part uses pam_ldap's codes per daemon state as measured by the N-M suite
(docs/nslcd.md); the lab part (skips without Docker) runs the real pam_ldap.so against
each daemon state and checks libpam, the model and the states that grant.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pamconform.cli.audit import socket_modules
from pamconform.core.errors import UsageError
from pamconform.model import audit, codes
from pamconform.protocols import get

STACKS = Path(__file__).resolve().parent.parent / "examples" / "stacks" / "ldap"
NSLCD = get("nslcd")

#: pam_ldap's return code per daemon state, as the N-M suite recorded it on Debian 12.
PAM_LDAP_CODES = {
    "grant": codes.SUCCESS,
    "deny": codes.AUTH_ERR,
    "ldap-down": codes.AUTHINFO_UNAVAIL,
    "down": codes.AUTHINFO_UNAVAIL,
    "close-early": codes.AUTHINFO_UNAVAIL,
    "garbage": codes.AUTHINFO_UNAVAIL,
    "hang": codes.AUTHINFO_UNAVAIL,
    "no-end": codes.SUCCESS,
}
GRANTING = {"grant", "no-end"}

#: A "keep logins working when LDAP is down" edit: an outage jumps over pam_deny.
OUTAGE_JUMPS = STACKS / "common-auth-outage"


def _plan(stack: Path) -> audit.Plan:
    return audit.plan(stack, socket_modules=tuple(socket_modules()))


def _model_grants(p: audit.Plan) -> set[str]:
    """The states in which the model says the stack grants (pam_unix fails: no Unix pw)."""
    probe = {audit.line_key(h): codes.AUTH_ERR if h.module_name == "pam_unix"
             else (codes.AUTH_ERR if h.module_name == "pam_deny" else codes.SUCCESS)
             for h in p.probes}
    out = set()
    for state, code in PAM_LDAP_CODES.items():
        outcome = audit.evaluate(p, p.files, code, probe)
        assert outcome is not None
        if outcome.name == "PAM_SUCCESS":
            out.add(state)
    return out


def test_registry_declares_the_socket_modules() -> None:
    known = socket_modules()
    assert known["pam_ldap"] is NSLCD
    assert known["pam_redirector"] is get("redirector")
    assert known["pam_transient_token"] is get("transient-token")  # its reference module
    assert "pam_unix" not in known


def test_audit_finds_pam_ldap_through_the_registry() -> None:
    p = _plan(STACKS / "common-auth")
    assert p.socket.module_name == "pam_ldap"
    assert (p.socket.origin.line, p.primitive) == (5, "authenticate")
    assert [h.module_name for h in p.probes] == ["pam_unix", "pam_deny", "pam_permit"]
    # through sshd's @include too
    assert _plan(STACKS / "sshd").socket.origin.file == "/etc/pam.d/common-auth"


def test_without_the_declared_name_it_is_no_socket_line() -> None:
    with pytest.raises(UsageError, match="no socket module line"):
        audit.plan(STACKS / "common-auth", socket_modules=("pam_redirector",))


def test_audit_protocol_option_narrows_the_search() -> None:
    """``audit --protocol nslcd`` looks for pam_ldap only; another protocol's module is none."""
    from pamconform.cli.main import main

    assert set(socket_modules("nslcd")) == {"pam_ldap"}
    assert "pam_ldap" not in socket_modules("redirector")
    assert main(["audit", str(STACKS / "common-auth"), "--protocol", "redirector"]) == 2
    assert main(["audit", str(STACKS / "common-auth"), "--protocol", "nope"]) == 2


def test_probe_of_pam_ldap_keeps_the_module_and_asks_for_the_password() -> None:
    p = _plan(STACKS / "common-auth")
    assert p.own_probe_line(p.files, p.socket) == (
        "auth [default=ok] pam_ldap.so minimum_uid=1000")


def test_model_common_auth_grants_only_when_pam_ldap_succeeds() -> None:
    assert _model_grants(_plan(STACKS / "common-auth")) == GRANTING


def test_model_catches_an_outage_that_jumps_over_pam_deny() -> None:
    grants = _model_grants(_plan(OUTAGE_JUMPS))
    assert grants == GRANTING | {"ldap-down", "down", "close-early", "garbage", "hang"}


def test_fail_open_follows_the_states_valid_grant() -> None:
    granted = audit.StateResult("no-end", codes.SUCCESS, {}, None, result="PAM_SUCCESS",
                                valid_grant=True)
    opened = audit.StateResult("garbage", codes.SUCCESS, {}, None, result="PAM_SUCCESS",
                               valid_grant=False)
    legacy = audit.StateResult("grant", codes.SUCCESS, {}, None, result="PAM_SUCCESS")
    assert not granted.fail_open and opened.fail_open and not legacy.fail_open


# --------------------------------------------------------------------------- the lab


@pytest.mark.docker
def test_lab_real_pam_ldap_in_each_daemon_state(docker_client: object) -> None:
    from pamconform.protocols.nslcd import stack_audit

    result = stack_audit.run(_plan(STACKS / "common-auth"))
    by_state = {s.state: s for s in result.states}
    assert set(by_state) == {s.name for s in stack_audit.STATES}
    for s in result.states:
        assert s.model_agrees, (s.state, s.result, s.model and s.model.name)
        # pam_ldap's own code matches the N-M suite's record (hang is not run)
        assert s.module_code == PAM_LDAP_CODES.get(s.state, s.module_code), s.state
    assert {s.state for s in result.states if s.granted} == {"grant", "sc-grant", "no-end"}
    assert by_state["sc-deny"].module_code == codes.AUTH_ERR
    assert result.fail_open == []

    faulty = stack_audit.run(_plan(OUTAGE_JUMPS))
    assert {s.state for s in faulty.fail_open} == {"ldap-down", "down", "close-early",
                                                     "garbage"}
