"""N-S2: the blank-user administrator path (rootpwmoddn) answers only a root peer."""

from pamconform.core.outcome import Skip
from pamconform.core.registry import case_factory
from pamconform.core.verdicts import Severity
from pamconform.protocols.nslcd import codec
from pamconform.protocols.nslcd.server_steps import (
    NOBODY,
    ask,
    authc,
    expect_refused,
    pam_request,
    raw,
    target,
)

case = case_factory(protocol="nslcd", kind="server", exclusive="user-state")


def _unprivileged(ctx, r):
    """True if the unprivileged peer reached the daemon (else it gained nothing: noted)."""
    if r.kind == "connect":
        ctx.note(f"{r.op.label}: {r.describe()}: uid {NOBODY} cannot reach the socket")
        return False
    return True


@case(
    "nslcd.server.admin-path-root-only",
    rule="N-S2",
    severity=Severity.MUST,
    title="The password-less administrator bind is for a root peer only",
    requirement=f"PAM_AUTHC with a blank user name and an empty password from a peer with "
    f"uid {NOBODY} (SO_PEERCRED) is never SUCCESS: only root may have the daemon bind as "
    "rootpwmoddn with the configured rootpwmodpw. What a root peer gets is reported.",
)
def admin_path_root_only(ctx):
    t = target(ctx)
    if not t.can_switch_uid:
        raise Skip("an unprivileged peer needs a root harness")
    root, nobody = ask(ctx, authc(t, "", b"", "blank user, empty password, root peer"),
                       authc(t, "", b"", f"blank user, empty password, uid {NOBODY}",
                             uid=NOBODY))
    ctx.note(f"{root.op.label}: {root.describe()}"
             + (" (rootpwmodpw in use)" if root.granted else ""))
    if _unprivileged(ctx, nobody):
        expect_refused(ctx, nobody, nobody.op.label,
                       hint="check the peer's uid with SO_PEERCRED before using rootpwmodpw")


@case(
    "nslcd.server.pwmod-asroot-root-only",
    rule="N-S2",
    severity=Severity.MUST,
    title="A password change as administrator without its password is for root only",
    requirement=f"PAM_PWMOD with asroot set and an empty old password from uid {NOBODY} is "
    "never SUCCESS (the new password sent is the user's current one, so a faulty daemon "
    "changes nothing in the directory).",
)
def pwmod_asroot_root_only(ctx):
    t = target(ctx)
    if not t.can_switch_uid:
        raise Skip("an unprivileged peer needs a root harness")
    a = t.accounts
    tail = codec.int32(1) + codec.string(b"") + codec.string(a.password)
    op = raw(f"pwmod {a.user} asroot, empty old password, uid {NOBODY}",
             [pam_request(codec.Action.PAM_PWMOD, a.user, tail)], t.timeout,
             expect=codec.Action.PAM_PWMOD, uid=NOBODY)
    r = ask(ctx, op)[0]
    if _unprivileged(ctx, r):
        expect_refused(ctx, r, r.op.label, clean=False,
                       hint="only a root peer may change passwords through rootpwmodpw")
