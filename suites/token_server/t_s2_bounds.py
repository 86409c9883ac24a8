"""T-S2: bound what is read and how long an attempt may take."""

import time

from pamconform.core import flood
from pamconform.core.context import IDLE_MARGIN_S
from pamconform.core.outcome import Fail
from pamconform.core.registry import case_factory
from pamconform.core.verdicts import Severity
from pamconform.protocols.token.client import REPLY_LEN, Connection
from pamconform.protocols.token.server_steps import mint, require, target

case = case_factory(protocol="transient-token", kind="server", exclusive="user-state")

#: How much a case pushes before it calls the read unbounded.
FLOOD_BYTES = 4 * 1024 * 1024
FLOOD_CHUNK = 64 * 1024


@case(
    "token.server.overlong-input-bounded",
    rule="T-S2",
    severity=Severity.MUST,
    title="Over-long input is bounded and refused",
    requirement=f"The token followed by {FLOOD_BYTES // 1024 // 1024} MiB of junk is never "
    "accepted, and the server stops reading (refuses or closes) long before the end. "
    "Taking all of it and closing later is FAIL when the memory of the process the token "
    "names grew by it, else NON-STRICT.",
)
def overlong_input_bounded(ctx):
    require(ctx, 1)
    t = target(ctx)
    minted = mint(ctx)
    sent = 0
    before = flood.rss(minted.token.pid)
    io_timeout = min(t.timeout, 2.0)
    with Connection(minted.socket, ctx.log, io_timeout) as conn:
        connected = time.monotonic()
        payload = minted.token.raw + b"A" * (FLOOD_CHUNK - len(minted.token.raw))
        while sent < FLOOD_BYTES:
            if not conn.send(payload):
                break
            sent += len(payload)
            payload = b"A" * FLOOD_CHUNK
        after = flood.rss(minted.token.pid) if sent >= FLOOD_BYTES else None
        stalled = conn.broken
        # a server that took it all may refuse or close at its deadline (T-S2 grades how
        # much it kept): wait for that as for a silent client, from the connect
        deadline = connected + t.idle_limit + IDLE_MARGIN_S
        took_all = sent >= FLOOD_BYTES
        reply = conn.read_reply(timeout=max(io_timeout, deadline - time.monotonic())
                                if took_all else io_timeout)
    ctx.note(f"{sent} bytes accepted before the server stopped reading or closed; "
             f"reply {reply.describe()}")
    if reply.grants:
        raise Fail("no PASS for the token followed by a flood of junk", reply.describe())
    if sent >= FLOOD_BYTES:
        flood.took_all_of_it(ctx, sent, still_open=not (reply.eof or reply.reset),
                             pid=minted.token.pid, before_kib=before,
                             after_kib=after)
    elif stalled and not (reply.eof or reply.reset or reply.data):
        ctx.non_strict("the server stopped reading but neither replied nor closed")


@case(
    "token.server.silent-client-timeout",
    rule="T-S2",
    severity=Severity.MUST,
    title="A silent client is timed out",
    requirement="A client that connects and sends nothing is refused or dropped within "
    f"the idle limit (--idle-limit, default 10 s; the case waits {IDLE_MARGIN_S:g} s more: "
    "the server's timer starts when it accepts).",
)
def silent_client_timeout(ctx):
    require(ctx, 1)
    t = target(ctx)
    minted = mint(ctx)
    with Connection(minted.socket, ctx.log, t.timeout) as conn:
        start = time.monotonic()
        reply = conn.read_reply(timeout=t.idle_limit + IDLE_MARGIN_S)
        waited = time.monotonic() - start
    if reply.grants:
        raise Fail("no PASS for a client that sent nothing", reply.describe())
    # a whole refusal within the limit ends the attempt too: the module reads no more
    if not (reply.eof or reply.reset or len(reply.data) >= REPLY_LEN):
        raise Fail(f"the server to drop a silent client within {t.idle_limit:g} s",
                   f"still open after {waited:.1f} s ({reply.describe()})")
    ctx.note(f"silent client dropped after {waited:.2f} s: {reply.describe()}")


@case(
    "token.server.slow-client-bounded",
    rule="T-S2",
    severity=Severity.SHOULD,
    title="A trickling client is cut off",
    requirement="The server should bound the whole attempt, not each read: the right token "
    "trickled one byte at a time over more than the idle limit is not accepted.",
)
def slow_client_bounded(ctx):
    require(ctx, 1)
    t = target(ctx)
    minted = mint(ctx)
    raw = minted.token.raw
    pause = (t.idle_limit + 1.0) / (len(raw) - 1)
    ctx.note(f"{len(raw)} one-byte writes, {pause * 1000:.0f} ms apart "
             f"({pause * (len(raw) - 1):.1f} s in all)")
    start = time.monotonic()
    with Connection(minted.socket, ctx.log, t.timeout) as conn:
        finished = conn.send_chunks([raw[i : i + 1] for i in range(len(raw))], pause)
        reply = conn.read_reply()
    took = time.monotonic() - start
    if reply.grants:
        raise Fail(f"the server to give up on a client still sending after {t.idle_limit:g} s",
                   f"accepted the token trickled over {took:.1f} s: {reply.describe()}",
                   "bound the whole attempt with one deadline, not each recv()")
    ctx.note(f"{'all bytes sent' if finished else 'cut off'} after {took:.2f} s: "
             f"{reply.describe()}")
