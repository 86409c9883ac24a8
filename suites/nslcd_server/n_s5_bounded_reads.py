"""N-S5: bounded reads: stalled clients are dropped and do not block others."""

from functools import partial

from pamconform.core.outcome import Fail
from pamconform.core.registry import case_factory
from pamconform.core.verdicts import Severity
from pamconform.protocols.nslcd import codec
from pamconform.protocols.nslcd.server_steps import ask, authc, expect_granted, raw, target

case = case_factory(protocol="nslcd", kind="server", exclusive="user-state")

#: Stalled connections held open while another client asks.
STALLED = 3


def _stalled_chunks(place, user):
    head = codec.header(codec.Action.PAM_AUTHC)
    return {"silent": [],
            "mid-header": [head[:6]],
            "mid-request": [head + codec.PamContext(user).encode() + codec.int32(13)]}[place]


STALL_WHAT = {"silent": "a client that connects and sends nothing",
              "mid-header": "a client that stops inside the header",
              "mid-request": "a client that stops inside the password string"}


def _dropped(place, ctx):
    t = target(ctx)
    r = ask(ctx, raw(STALL_WHAT[place], _stalled_chunks(place, t.accounts.user),
                     t.idle_limit))[0]
    ctx.note(f"{r.op.label}: {r.describe()}")
    if r.granted:
        raise Fail(f"no grant for {STALL_WHAT[place]}", r.describe())
    if r.kind == "timeout":
        raise Fail(f"the connection closed within {t.idle_limit:g} s",
                   f"hung: still open after {r.elapsed_s:.1f} s",
                   "bound the whole read of a request with a deadline")
    ctx.informational(f"{STALL_WHAT[place]} was dropped after {r.elapsed_s:.2f} s")


for _place in STALL_WHAT:
    case(
        f"nslcd.server.idle-{_place}-dropped",
        rule="N-S5",
        severity=Severity.MUST,
        title=f"A stalled client is dropped ({_place})",
        requirement=f"The daemon closes the connection of {STALL_WHAT[_place]} within the "
        "suite's idle limit (--idle-limit), without a grant; the bound observed is reported.",
    )(partial(_dropped, _place))


@case(
    "nslcd.server.served-while-stalled",
    rule="N-S5",
    severity=Severity.MUST,
    title="Stalled clients do not block others",
    requirement=f"While {STALLED} clients hold connections open without sending a whole "
    "request, another client's right password is answered (granted) within the timeout.",
)
def served_while_stalled(ctx):
    t = target(ctx)
    a = t.accounts
    # the stalled clients outlast the asking one: only the daemon may end their stall
    stalled = [raw(f"stalled client #{i}", _stalled_chunks("mid-request", a.user),
                   t.timeout + 1) for i in range(1, STALLED + 1)]
    ops = [*stalled, authc(t, a.user, a.password, "the right password, meanwhile", delay=0.3)]
    *_, r = ask(ctx, *ops, parallel=True)
    if r.kind == "timeout":
        raise Fail(f"an answer within {t.timeout:g} s while clients stall",
                   f"hung: {r.describe()}", "serve clients concurrently or drop stalled ones")
    expect_granted(ctx, r, r.op.label)
