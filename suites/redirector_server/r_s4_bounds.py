"""R-S4: bound what is read and how long a client may idle, and keep serving others."""

import time

from pamconform.core import flood
from pamconform.core.outcome import Fail
from pamconform.core.registry import case_factory
from pamconform.core.verdicts import Severity
from pamconform.protocols.redirector.client import Connection
from pamconform.protocols.redirector.server_steps import (
    expect_alive,
    expect_grant,
    expect_stall_denied,
    idle_wait,
    login,
    open_stall,
    target,
    wait_out_stall,
)

case = case_factory(protocol="redirector", kind="server")

#: How much a case pushes without a newline before it calls the read unbounded.
FLOOD_BYTES = 4 * 1024 * 1024
FLOOD_CHUNK = 64 * 1024


@case(
    "redir.server.silent-client-timeout",
    exclusive="idle-clients",
    rule="R-S4",
    severity=Severity.SHOULD,
    title="A silent client is dropped",
    requirement="The server should close a connection that sends nothing within its idle "
    "timeout (the case waits --idle-limit seconds).",
)
def silent_client_timeout(ctx):
    t = target(ctx)
    with Connection(t.socket, ctx.log, t.timeout) as conn:
        start = time.monotonic()
        closed = conn.wait_closed(idle_wait(ctx))
        waited = time.monotonic() - start
    if not closed:
        raise Fail(f"the server to drop a silent client within {t.idle_limit:.0f} s",
                   f"still open after {waited:.1f} s")
    ctx.note(f"silent client dropped after {waited:.2f} s")


@case(
    "redir.server.stalled-mid-request-timeout",
    exclusive="idle-clients",
    rule="R-S4",
    severity=Severity.SHOULD,
    title="A client that stops mid-request is dropped",
    requirement="The server should close, without a grant, a connection that stops in the "
    "middle of the user name, or of the password, within its idle timeout (the case waits "
    "--idle-limit seconds for both at once).",
)
def stalled_mid_request_timeout(ctx):
    t = target(ctx)
    places = ("mid-user", "mid-password")
    start = time.monotonic()
    conns = [open_stall(ctx, place) for place in places]
    ended = []
    try:
        # both stall at once: by the time the first is dropped, so is the second
        for conn in conns:
            reply = wait_out_stall(ctx, conn, time.monotonic() - start)
            ended.append((reply, time.monotonic() - start))
    finally:
        for conn in conns:
            conn.close()
    for place, (reply, after) in zip(places, ended, strict=True):
        expect_stall_denied(ctx, reply, f"a client stalled {place}")
        if reply.timed_out:
            raise Fail(f"the server to drop a client stalled {place} within "
                       f"{t.idle_limit:g} s", reply.describe())
        ctx.note(f"stalled {place}: dropped within {after:.2f} s")


@case(
    "redir.server.slow-client-others-served",
    # served promptly or not is the verdict: never beside others' idle clients
    exclusive="target",
    rule="R-S4",
    severity=Severity.MUST,
    title="Slow and silent clients do not block others",
    requirement="While one client is silent and another trickles a partial request, the "
    "server answers a third client's valid login within the timeout.",
)
def slow_client_others_served(ctx):
    t = target(ctx)
    with Connection(t.socket, ctx.log, t.timeout), \
            Connection(t.socket, ctx.log, t.timeout) as slow:
        slow.send(t.user[:1])
        time.sleep(0.1)
        reply = login(ctx, t.user, t.password)
        slow.send(t.user[1:2])
    expect_grant(ctx, reply, "a valid login while two other clients stall")


@case(
    "redir.server.field-limit",
    # served promptly or not is the verdict: never beside others' idle clients
    exclusive="target",
    rule="R-S4",
    severity=Severity.MUST,
    title="Reads are bounded",
    requirement=f"The server stops reading a line that has no newline after a field limit "
    f"(it is pushed {FLOOD_BYTES // 1024 // 1024} MiB), answering or closing the connection "
    "before the end. Taking all of it and closing later is FAIL when the server's memory "
    "grew by it (--pid), else NON-STRICT.",
)
def field_limit(ctx):
    t = target(ctx)
    sent = 0
    before = flood.rss(t.pid)
    with Connection(t.socket, ctx.log, min(t.timeout, 2.0)) as conn:
        while sent < FLOOD_BYTES:
            if not conn.send(b"A" * FLOOD_CHUNK):
                break
            sent += FLOOD_CHUNK
        after = flood.rss(t.pid) if sent >= FLOOD_BYTES else None
        stalled = conn.broken
        reply = conn.read_reply(timeout=min(t.timeout, 2.0))
    ctx.note(f"{sent} bytes accepted before the server stopped reading or closed")
    if reply.kind.grants:
        raise Fail("no grant for a flood of bytes", reply.describe())
    if sent >= FLOOD_BYTES:
        flood.took_all_of_it(ctx, sent, still_open=not (reply.eof or reply.reset),
                             pid=t.pid, before_kib=before,
                             after_kib=after)
    elif stalled and not (reply.eof or reply.reset):
        ctx.non_strict("the server stopped reading but kept the connection open")
    expect_alive(ctx, "after a flood")
