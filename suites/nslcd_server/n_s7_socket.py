"""N-S7: the socket and its directory; what a world-accessible socket gives away."""

from pamconform.core.outcome import Fail, Skip
from pamconform.core.registry import case_factory
from pamconform.core.verdicts import Severity
from pamconform.protocols.nslcd.server_steps import (
    NOBODY,
    ask,
    authc,
    expect_refused,
    target,
)

case = case_factory(protocol="nslcd", kind="server", exclusive="user-state")


def _stat(ctx):
    st = target(ctx).stat()
    sock, folder = st.get("socket", {}), st.get("dir", {})
    for name, info in (("socket", sock), ("directory", folder)):
        if "error" in info:
            raise Skip(f"cannot stat the {name}: {info['error']}")
        ctx.note(f"{name} {info['path']}: {info['filemode']} ({info['mode']:04o}), "
                 f"owner {info['owner']} (uid {info['uid']}), gid {info['gid']}")
    return sock, folder


@case(
    "nslcd.server.socket-not-replaceable",
    rule="N-S7",
    severity=Severity.MUST,
    title="No unprivileged user can replace the socket",
    requirement="The socket is a socket owned by root, the daemon's user or the owner of its "
    "directory; the directory is owned by root, the daemon's user or the socket's owner and "
    "writable by no one else (unless sticky, which keeps others from removing the socket): "
    "not by others, and not by its group unless that group holds no other user. Whoever can "
    "replace the socket receives every password pam_ldap sends.",
)
def socket_not_replaceable(ctx):
    sock, folder = _stat(ctx)
    if not sock["is_socket"]:
        raise Fail("a socket at the path", sock["filemode"])
    daemon = target(ctx).daemon_user
    # a daemon may bind as root, chown its socket and drop privileges
    if sock["uid"] not in {0, folder["uid"]} and sock["owner"] != daemon:
        raise Fail("a socket owned by root, the daemon's user or its directory's owner",
                   f"owned by {sock['owner']}")
    if folder["uid"] not in {0, sock["uid"]} and folder["owner"] != daemon:
        raise Fail(f"a directory owned by root or the daemon ({daemon or 'the socket owner'})",
                   f"owned by {folder['owner']}", "its owner can replace the socket")
    if folder["mode"] & 0o1000:
        return  # sticky: only the socket's owner (or root) may remove or rename it
    if folder["mode"] & 0o002:
        raise Fail("a directory others cannot write", f"mode {folder['mode']:04o}",
                   "any local user can remove the socket and listen in its place")
    if folder["mode"] & 0o020:
        trusted = {"root", folder["owner"], sock["owner"], daemon}
        writers = sorted(set(folder.get("group_users", [])) - trusted)
        if writers:
            raise Fail("a directory only root, the daemon and the owner can write",
                       f"mode {folder['mode']:04o}, group {folder.get('group')} with "
                       f"{', '.join(writers)}",
                       "a member of the group can remove the socket and listen in its place")
        ctx.note(f"group-writable, but group {folder.get('group')} holds no other user")


@case(
    "nslcd.server.socket-world-access",
    rule="N-S7",
    severity=Severity.MAY,
    title="A world-accessible socket is reported, with what it gives away",
    requirement="Reported, not failed: the socket may be world-accessible (0666), since NSS "
    "lookups come from every process. What an unprivileged peer gains is graded by "
    "nslcd.server.unprivileged-peer-password-checked and N-S2 (the administrator path).",
)
def socket_world_access(ctx):
    sock, _ = _stat(ctx)
    if sock["mode"] & 0o006:
        ctx.informational(f"mode {sock['mode']:04o}: any local user can connect (by design, "
                          "for NSS); authentication for another user stays password-checked "
                          "(see nslcd.server.unprivileged-peer-password-checked)")


@case(
    "nslcd.server.unprivileged-peer-password-checked",
    rule="N-S7",
    severity=Severity.MUST,
    title="An unprivileged peer gets nothing without the password",
    requirement=f"From uid {NOBODY}, PAM_AUTHC for another user with a wrong or empty "
    "password is refused: connecting to the world-accessible socket gives a local user an "
    "oracle for passwords (like any login prompt) but never a grant.",
)
def unprivileged_peer_password_checked(ctx):
    t = target(ctx)
    if not t.can_switch_uid:
        raise Skip("an unprivileged peer needs a root harness")
    a = t.accounts
    for r in ask(ctx, authc(t, a.user, b"not-" + a.password, f"wrong password of {a.user}, "
                            f"uid {NOBODY}", uid=NOBODY),
                 authc(t, a.user, b"", f"empty password of {a.user}, uid {NOBODY}",
                       uid=NOBODY)):
        if r.kind == "connect":
            ctx.note(f"{r.op.label}: {r.describe()}: uid {NOBODY} cannot reach the socket")
            continue
        expect_refused(ctx, r, r.op.label, clean=False)
