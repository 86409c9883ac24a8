"""T-S4: only the PAM side (root, by SO_PEERCRED) may present the token."""

import os

from pamconform.core.outcome import Fail, Skip
from pamconform.core.registry import case_factory
from pamconform.core.verdicts import Severity
from pamconform.drivers.peer import connect_as
from pamconform.protocols.token.client import module_grants
from pamconform.protocols.token.server_steps import mint, require, target

case = case_factory(protocol="transient-token", kind="server", exclusive="user-state")

NOBODY = 65534


@case(
    "token.server.peer-credentials",
    rule="T-S4",
    severity=Severity.MUST,
    title="A client that is not root never gets PASS",
    requirement=f"The right token sent by a process running as uid {NOBODY} (keeping "
    "CAP_DAC_OVERRIDE, so the socket's mode does not stop it) is refused: the server "
    "checks the peer's uid with SO_PEERCRED.",
)
def peer_credentials(ctx):
    if os.geteuid() != 0:
        raise Skip("switching to an unprivileged uid needs a root harness")
    require(ctx, 1)
    t = target(ctx)
    minted = mint(ctx)
    uid = NOBODY if minted.token.uid != NOBODY else NOBODY - 1
    outcome = connect_as(uid, uid, minted.socket, minted.token.raw, t.timeout,
                         keep_dac_override=True)
    kept = outcome.dac_kept
    ctx.note(f"as uid {uid} ({'with' if kept else 'without'} CAP_DAC_OVERRIDE): "
             f"{outcome.describe()}")
    if module_grants(outcome.reply):
        raise Fail(f"no PASS for a client running as uid {uid}",
                   f"accepted: {outcome.describe()}",
                   "check the peer with SO_PEERCRED and allow only uid 0 (the PAM side)")
    if outcome.refused and not kept:
        ctx.informational("CAP_DAC_OVERRIDE could not be kept, so only the socket's mode "
                          "was exercised, not the server's own peer check")
