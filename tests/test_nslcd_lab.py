"""Real nslcd and pynslcd (Debian's packages) in the nslcd lab, asked with our own client.

Needs a Docker engine (skips without one, see conftest.docker_client). The first run builds
the lab image and the nslcd variant on top (a few minutes); later runs reuse both.
Passwords of the lab directory are "<user>-ldap-pw" (fixtures of containers/nslcd/).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from pamconform.lab import LabSession
from pamconform.protocols.nslcd.lab import NslcdLab, ensure_nslcd_image, start_nslcd_lab

pytestmark = pytest.mark.docker

DAEMONS = ("nslcd", "pynslcd")


@pytest.fixture(scope="module")
def lab(docker_client: Any) -> Iterator[NslcdLab]:
    image = ensure_nslcd_image(docker_client)
    with LabSession(docker_client) as session:
        yield start_nslcd_lab(session, image)


def authc_granted(out: dict[str, Any]) -> bool:
    """A reply that lets pam_ldap's auth step succeed: an entry with authc SUCCESS."""
    return bool(out["ok"] and out["entries"] and out["entries"][0]["authc"] == 0)


@pytest.mark.parametrize("daemon", DAEMONS)
def test_right_password_is_granted(lab: NslcdLab, daemon: str) -> None:
    out = lab.ask(daemon, "authc", "nancy", b"nancy-ldap-pw")
    assert authc_granted(out), out
    assert out["entries"][0]["username"] == "nancy"


@pytest.mark.parametrize("daemon", DAEMONS)
@pytest.mark.parametrize(
    ("user", "password"),
    [
        ("nancy", b"nancy-ldap-pw-"),  # extended
        ("nancy", b"nancy-ldap-p"),  # truncated
        ("nancy", b"NANCY-LDAP-PW"),  # case-changed
        ("nancy", b""),  # empty: must not become an unauthenticated bind
        ("ghost", b"nancy-ldap-pw"),  # unknown user
        ("lucy", b"lucy-ldap-pw"),  # locked by the password policy
    ],
    ids=["extended", "truncated", "case", "empty", "unknown-user", "locked"],
)
def test_wrong_credentials_are_denied(lab: NslcdLab, daemon: str, user: str,
                                      password: bytes) -> None:
    out = lab.ask(daemon, "authc", user, password)
    assert not authc_granted(out), out


@pytest.mark.parametrize("daemon", DAEMONS)
def test_blank_user_empty_password_only_for_a_root_peer(lab: NslcdLab, daemon: str) -> None:
    """rootpwmodpw is configured: root may bind as rootpwmoddn without a password, nobody not."""
    assert authc_granted(lab.ask(daemon, "authc", "", b"", as_user="root"))
    out = lab.ask(daemon, "authc", "", b"", as_user="nobody")
    assert not authc_granted(out), out


def test_expired_account_is_refused_by_nslcd_authz(lab: NslcdLab) -> None:
    """The lab's expired account really is expired (shadowExpire) for the C daemon."""
    out = lab.ask("nslcd", "authz", "oscar")
    assert out["ok"] and out["entries"][0]["code_name"] == "ACCT_EXPIRED", out
    assert lab.ask("nslcd", "authz", "nancy")["entries"][0]["code_name"] == "SUCCESS"


def test_mixed_case_uid_answers_with_the_directory_spelling(lab: NslcdLab) -> None:
    out = lab.ask("nslcd", "authc", "mixed", b"mixed-ldap-pw")
    assert authc_granted(out) and out["entries"][0]["username"] == "Mixed", out


def test_ldap_down_is_not_a_grant(lab: NslcdLab) -> None:
    lab.control("stop-slapd")
    try:
        for daemon in DAEMONS:
            out = lab.ask(daemon, "authc", "nancy", b"nancy-ldap-pw", timeout=15)
            assert not authc_granted(out), (daemon, out)
    finally:
        lab.control("start-slapd")
