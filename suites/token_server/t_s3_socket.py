"""T-S3: the socket is the user's, mode 0600, and removed when the server ends."""

import os
import signal
import stat

from pamconform.core.outcome import Fail, Skip
from pamconform.core.registry import case_factory
from pamconform.core.socket_reach import CLASSES, barrier
from pamconform.core.verdicts import Severity
from pamconform.protocols.token import procfs
from pamconform.protocols.token.client import socket_state
from pamconform.protocols.token.minting import spend
from pamconform.protocols.token.server_steps import (
    attempt,
    expect_refused,
    mint,
    require,
    wait_gone,
)

case = case_factory(protocol="transient-token", kind="server", exclusive="target")

#: How long the server may take to remove its socket.
UNLINK_WAIT = 1.0


def _visible(ctx, minted):
    st = socket_state(minted.socket)
    if st is None:
        raise Skip(f"the socket file {minted.socket} is not visible to the harness")
    return st


@case(
    "token.server.socket-mode",
    rule="T-S3",
    severity=Severity.MUST,
    title="The socket is the user's, mode 0600",
    requirement="The socket the token names is a socket (not a symlink), owned by the "
    "token's uid, with no group or other permission bits (mode 0600). Bits through which "
    "nobody else can connect (no write bit, or a directory above they cannot search) are "
    "NON-STRICT.",
)
def socket_mode(ctx):
    require(ctx, 1)
    minted = mint(ctx)
    try:
        st = _visible(ctx, minted)
        mode = stat.S_IMODE(st.st_mode)
        ctx.note(f"{minted.socket}: {stat.filemode(st.st_mode)} ({mode:04o}), owner uid "
                 f"{st.st_uid}, gid {st.st_gid}")
        if stat.S_ISLNK(st.st_mode) or not stat.S_ISSOCK(st.st_mode):
            raise Fail("a socket at the path", f"{stat.filemode(st.st_mode)}")
        if st.st_uid != minted.token.uid:
            raise Fail(f"a socket owned by the token's uid {minted.token.uid}",
                       f"owned by uid {st.st_uid}")
        if mode & 0o077:
            # graded by who can connect (write on it, search above): group and others
            barriers = [barrier(minted.socket, who) for who in CLASSES]
            if None in barriers:
                raise Fail("mode 0600 (no group or other bits)", f"mode {mode:04o}",
                           "other local users could connect and spend or probe the token")
            # graded by what an attacker gains: nobody else can connect, but the socket's
            # own mode no longer protects it when the directory changes
            ctx.non_strict(f"mode {mode:04o}, not 0600: only its directory keeps other "
                           f"users out ({'; '.join(b for b in barriers if b)})")
        if mode != 0o600:
            ctx.note(f"mode {mode:04o} is not exactly 0600 but grants nobody else access")
    finally:
        spend(minted.socket)


@case(
    "token.server.socket-unlinked-after-use",
    rule="T-S3",
    severity=Severity.MUST,
    title="The socket is removed after use",
    requirement=f"Within {UNLINK_WAIT:g} s of the token being used (the right token, "
    "presented as the module does), the socket file is gone. What a server does after a "
    "wrong token is graded by token.server.dead-after-failure (SHOULD) only: a server that "
    "keeps listening for the right token after a wrong one costs an attacker nothing "
    "(the secret has 192 random bits), so it must not FAIL here.",
)
def socket_unlinked_after_use(ctx):
    require(ctx, 1)
    minted = mint(ctx)
    _visible(ctx, minted)
    reply = attempt(ctx, minted, minted.token.raw, shutdown=False)
    ctx.note(f"the right token: {reply.describe()}")
    if not wait_gone(minted.socket, UNLINK_WAIT):
        raise Fail("the socket removed after the right token was used",
                   f"{minted.socket} still there {UNLINK_WAIT:g} s later")


@case(
    "token.server.socket-unlinked-on-sigterm",
    rule="T-S3",
    severity=Severity.SHOULD,
    title="The socket is removed on SIGTERM",
    requirement=f"When the process the token names (and that holds the socket) gets "
    f"SIGTERM, the socket file is gone within {UNLINK_WAIT:g} s and the token is dead.",
)
def socket_unlinked_on_sigterm(ctx):
    require(ctx, 1)
    minted = mint(ctx)
    _visible(ctx, minted)
    pid = minted.token.pid
    if pid not in procfs.holders(minted.socket, [pid]):
        spend(minted.socket)
        raise Skip(f"pid {pid} from the token is not seen holding {minted.socket} "
                   "(another process serves it, or /proc is not readable): not signalling it")
    try:
        os.kill(pid, signal.SIGTERM)
    except OSError as exc:
        spend(minted.socket)
        raise Skip(f"cannot signal pid {pid}: {exc.strerror}") from None
    ctx.note(f"sent SIGTERM to pid {pid}")
    if not wait_gone(minted.socket, UNLINK_WAIT):
        raise Fail(f"the socket removed after SIGTERM to pid {pid}",
                   f"{minted.socket} still there {UNLINK_WAIT:g} s later")
    expect_refused(ctx, attempt(ctx, minted, minted.token.raw, shutdown=False),
                   "the token after SIGTERM")
