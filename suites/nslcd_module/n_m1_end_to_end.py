"""N-M1/N-M2 end to end: through the real sshd and su in the lab, with the module alone
deciding authentication; the daemon misbehaving or down never lets anyone in, and sshd
keeps serving."""

from pamconform.core.registry import case_factory
from pamconform.core.verdicts import Severity
from pamconform.protocols.nslcd.module_steps import (
    PASSWORD,
    SSH_SILENCE,
    expect_login_denied,
    expect_login_granted,
    play_beside,
    record_login,
    target,
)
from pamconform.protocols.nslcd.module_target import LDAP_LOGIN_USER, LOGIN_USER

case = case_factory(protocol="nslcd", kind="module", exclusive="lab-server")
#: played in the target's twin container, beside the cases on its own socket
twin_case = case_factory(protocol="nslcd", kind="module", exclusive="lab-twin")

LDAP_PASSWORD = "nancy-ldap-pw"


def _login(ctx, via, user, password, label):
    t = target(ctx)
    result = t.ssh(user, password) if via == "ssh" else t.su("mallory", user, password)
    record_login(ctx, f"{via}: {label}", result)
    ctx.note(f"{via} {label}: {result.outcome} in {result.latency_s:.1f} s")
    return result


for _via in ("ssh", "su"):
    @case(
        f"nslcd.module.e2e-{_via}-nslcd-grant",
        rule="N-M1",
        severity=Severity.MUST,
        title=f"The directory password logs in through {_via} (positive control)",
        requirement=f"With Debian's nslcd up, {_via} as a directory user with the directory "
        "password reaches a shell as that user.",
    )
    def _grant(ctx, _via=_via):
        target(ctx).restore()
        expect_login_granted(_login(ctx, _via, LDAP_LOGIN_USER, LDAP_PASSWORD, "nslcd up"),
                             "the directory password")

    for _state, _what in (("down", "nslcd stopped"), ("slapd-down", "the directory stopped")):
        @case(
            f"nslcd.module.e2e-{_via}-{_state}",
            rule="N-M1",
            severity=Severity.MUST,
            title=f"Denied through {_via} with {_what}",
            requirement=f"With {_what}, {_via} with the right directory password is denied "
            "and the login ends (no hang)"
            + ("; sshd keeps running." if _via == "ssh" else "."),
        )
        def _outage(ctx, _via=_via, _state=_state, _what=_what):
            t = target(ctx)
            try:
                t.daemon(_state)
                result = _login(ctx, _via, LDAP_LOGIN_USER, LDAP_PASSWORD, _what)
            finally:
                t.restore()
            expect_login_denied(ctx, result, f"a {_via} login with {_what}", via=_via)

    for _scenario, _what in (("close-after-request", "closes without a reply"),
                             ("deny", "answers AUTH_ERR")):
        @case(
            f"nslcd.module.e2e-{_via}-daemon-{_scenario}",
            rule="N-M1",
            severity=Severity.MUST,
            title=f"Denied through {_via} when the daemon {_what}",
            requirement=f"When the daemon {_what}, {_via} is denied"
            + (" and sshd keeps running." if _via == "ssh" else "."),
        )
        def _scenario_case(ctx, _via=_via, _scenario=_scenario, _what=_what):
            target(ctx).scenario(_scenario)
            expect_login_denied(ctx, _login(ctx, _via, LOGIN_USER, PASSWORD, _what),
                                f"a {_via} login while the daemon {_what}", via=_via)


@twin_case(
    "nslcd.module.e2e-ssh-daemon-silence",
    rule="N-M2",
    severity=Severity.MUST,
    title="An ssh login ends when the daemon never answers",
    requirement="When the daemon reads the request and never answers, the ssh login is "
    "denied within the module's longest wait plus the login's own time; sshd keeps running.",
)
def ssh_silence(ctx):
    t = target(ctx).twin()
    # beside the direct N-M2 hangs, in the twin container: one 60 s wait for all
    # (module_steps.play_beside)
    played = play_beside(ctx, SSH_SILENCE[0])
    result = played.attempt
    record_login(ctx, f"ssh: daemon silent, {played.how}", result)
    ctx.note(f"ssh daemon silent: {result.outcome} in {result.latency_s:.1f} s")
    ctx.extra["daemon_sent_hex"] = [played.sent_hex]
    ctx.extra["hang"] = {"outcome": str(result.outcome), "seconds": round(result.latency_s, 3),
                         "bound_s": t.login_timeout}
    expect_login_denied(ctx, result, "an ssh login while the daemon is silent", where=t)
