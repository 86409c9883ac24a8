"""R-S6: only privileged clients reach the server, and it checks who they are."""

import os
from pathlib import Path

from pamconform.core.outcome import Fail, Skip
from pamconform.core.registry import case_factory
from pamconform.core.socket_reach import barrier
from pamconform.core.verdicts import Severity
from pamconform.drivers.peer import connect_as
from pamconform.protocols.redirector.client import request
from pamconform.protocols.redirector.reply import classify
from pamconform.protocols.redirector.server_steps import target

case = case_factory(protocol="redirector", kind="server")

NOBODY = 65534


def others_can_reach(path: Path) -> tuple[bool, str]:
    """Whether a user in no group of the owner can connect: o+w on the socket, o+x above."""
    why = barrier(path, "others")
    if why is not None:
        return False, why
    return True, f"socket mode {os.stat(path).st_mode & 0o777:04o} and every directory above is o+x"


@case(
    "redir.server.socket-permissions",
    rule="R-S6",
    severity=Severity.MUST,
    title="The socket is not reachable by unprivileged users",
    requirement="The socket is owned by root with mode 0600, or sits in a 0700/0750 "
    "directory, so that unprivileged users cannot connect.",
)
def socket_permissions(ctx):
    t = target(ctx)
    try:
        st = os.stat(t.socket)
    except OSError as exc:
        raise Skip(f"the socket file is not visible to the harness: {exc}") from exc
    ctx.note(f"{t.socket}: mode {st.st_mode & 0o7777:04o}, owner uid {st.st_uid}, "
             f"gid {st.st_gid}")
    reachable, why = others_can_reach(t.socket)
    ctx.note(why)
    if reachable:
        raise Fail("a socket only privileged users can connect to", why)
    if st.st_uid != 0:
        ctx.non_strict(f"the socket is owned by uid {st.st_uid}, not root")


@case(
    "redir.server.peer-credentials",
    rule="R-S6",
    severity=Severity.MUST,
    title="An unprivileged client is refused",
    requirement="A valid login sent by an unprivileged user (uid 65534) is never granted: "
    "the socket keeps it out or the server checks SO_PEERCRED.",
)
def peer_credentials(ctx):
    t = target(ctx)
    if os.geteuid() != 0:
        raise Skip("switching to an unprivileged uid needs a root harness")
    outcome = connect_as(NOBODY, NOBODY, t.socket, request(t.user, t.password), t.timeout)
    ctx.note(f"as uid {NOBODY}: {outcome.describe()}")
    if outcome.refused:
        ctx.note("the socket's permissions keep unprivileged users out")
        return
    if classify(outcome.reply).grants:
        raise Fail("no grant for a client running as an unprivileged uid",
                   f"granted: {outcome.describe()}",
                   "check the peer's uid with SO_PEERCRED and make the socket 0600 root")
