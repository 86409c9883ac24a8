"""N-S8: LDAP stopped or paused: answer in time, never grant, recover."""

from functools import partial

from pamconform.core.registry import case_factory
from pamconform.core.verdicts import Severity
from pamconform.protocols.nslcd.server_steps import (
    ask,
    authc,
    expect_granted,
    expect_refused,
    ldap,
    target,
    until_granted,
)

case = case_factory(protocol="nslcd", kind="server", exclusive="user-state")

#: How the directory is taken away, and how it comes back.
OUTAGES = {"stopped": ("stop", "start"), "paused": ("pause", "resume")}


def _recovered(ctx, limit):
    """The right password is granted again within ``limit`` seconds of LDAP's return."""
    r = until_granted(target(ctx), ctx.log, limit, "right password after LDAP is back")
    expect_granted(ctx, r, f"the right password within {limit:g} s of LDAP's return")


def _outage(name, ctx):
    t = target(ctx)
    a = t.accounts
    away, back = OUTAGES[name]
    ldap(ctx, away)
    try:
        ctx.only_waits()  # the daemon now waits on the directory: nothing a timing case sees
        try:
            results = ask(ctx, authc(t, a.user, a.password, f"right password, LDAP {name}",
                                     timeout=t.ldap_limit),
                          authc(t, a.user, b"", f"empty password, LDAP {name}",
                                timeout=t.ldap_limit),
                          authc(t, a.user, b"not-" + a.password,
                                f"wrong password, LDAP {name}", timeout=t.ldap_limit))
        finally:
            ctx.works_again()
    finally:
        ldap(ctx, back)
    for r in results:
        expect_refused(ctx, r, r.op.label, clean=False,
                       hint="an outage must fail closed within bind_timelimit/timelimit")
    _recovered(ctx, t.ldap_limit)


for _name in OUTAGES:
    case(
        f"nslcd.server.ldap-{_name}",
        rule="N-S8",
        severity=Severity.MUST,
        title=f"LDAP {_name}: no grant, an answer in time, recovery",
        requirement=f"With the directory {_name}, the right, an empty and a wrong password "
        "are refused (a close counts) within the suite's LDAP limit (15 s, above the lab's "
        "bind_timelimit + timelimit); once it is back, the right password is granted again "
        "within the same limit. Needs a target whose directory the suite controls (the lab).",
    )(partial(_outage, _name))
