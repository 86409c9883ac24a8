"""N-M2: a daemon that never finishes cannot hold a login longer than the module's own
longest wait. pam_ldap has no timeout option (pam_ldap(8)); its client's compiled read
timeout is 60 s, so the bound is 60 s plus the harness margin (see docs/nslcd.md)."""

from functools import partial

from pamconform.core.registry import case_factory
from pamconform.core.verdicts import Severity
from pamconform.protocols.nslcd.module_steps import (
    HANGS,
    expect_bounded_refusal,
    expect_granted,
    play,
    play_beside,
    record,
    target,
)

case = case_factory(protocol="nslcd", kind="module", exclusive="lab-server")
#: played in the target's twin container, beside the cases on its own socket
twin_case = case_factory(protocol="nslcd", kind="module", exclusive="lab-twin")


def _hang(name, what, ctx):
    # they wait out the same 60 s bound side by side, in the twin container
    # (module_steps.play_beside), while the other cases use the target's own socket
    played = play_beside(ctx, name)
    attempt = played.attempt
    record(ctx, f"daemon {name}, {played.how}", attempt)
    ctx.extra.setdefault("daemon_sent_hex", []).append(played.sent_hex)
    expect_bounded_refusal(ctx, attempt, f"a login while the daemon {what}")


for _name, _scenario, _args, _what in HANGS:
    twin_case(
        f"nslcd.module.daemon-{_name}",
        rule="N-M2",
        severity=Severity.MUST,
        title=f"Bounded refusal when the daemon {_what}",
        requirement=f"When the daemon {_what}, pam_authenticate returns a refusal within the "
        "module's longest wait plus the harness margin, instead of blocking the application.",
    )(partial(_hang, _name, _what))


@case(
    "nslcd.module.daemon-slow-grant",
    rule="N-M2",
    severity=Severity.SHOULD,
    title="A success that takes 1 s still counts",
    requirement="A daemon answering success after 1 s is granted: the module does not give "
    "up so early that a busy directory locks users out.",
)
def slow_grant(ctx):
    expect_granted(play(ctx, "delay", {"seconds": 1}), "a login the daemon grants after 1 s",
                   target(ctx).hang_bound)
