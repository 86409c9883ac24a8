"""R-M1/R-M2: every server behaviour but a well-formed grant ends in a bounded denial.

Each case sets the scenario server's behaviour, then runs a pamdrive transaction with the
right password through the probe stack (see ``pamconform.protocols.redirector.direct_steps.PROBE``).
"""

import math
from functools import partial

from pamconform.core.registry import case_factory
from pamconform.core.verdicts import Severity
from pamconform.protocols.redirector.direct_steps import (
    BEHAVIOURS,
    HANGS,
    MALFORMED,
    PASSWORD,
    direct,
    expect_bounded_denial,
    expect_denied,
    expect_success,
    probe_service,
    record,
)

case = case_factory(protocol="redirector", kind="module")

def _attempt(scenario, args, ctx):
    d = direct(ctx)
    d.scenario(scenario, **args)
    attempt = d.one(probe_service(d), passwords=[PASSWORD])
    record(ctx, f"scenario {scenario} {args or ''}".strip(), attempt)
    return d, attempt


def _scenario(scenario, args, ctx):
    d, attempt = _attempt(scenario, args, ctx)
    ctx.note(attempt.summary())
    expect_denied(attempt, f"a login while the server {scenario}", d.hang_bound)


def _hang(scenario, args, ctx):
    if scenario == "delay":  # the grant comes after the module's bound, whatever it is
        # (at most the scenario server's 120 s hold)
        late = min(120, max(args["seconds"], math.ceil(direct(ctx).hang_bound) + 5))
        args = dict(args, seconds=late)
    d, attempt = _attempt(scenario, args, ctx)
    expect_bounded_denial(ctx, attempt, f"a login while the server {scenario}", d.hang_bound)


@case(
    "redir.module.grant",
    rule="R-M1",
    severity=Severity.MUST,
    title="A well-formed grant is a success (positive control)",
    requirement="With a server replying exactly 0, pam_authenticate returns PAM_SUCCESS "
    "(a module that never grants is broken, not closed).",
)
def grant(ctx):
    d = direct(ctx)
    proc = d.scenario("grant")
    attempt = d.one(probe_service(d), passwords=[PASSWORD])
    record(ctx, "scenario grant", attempt)
    log = proc.log(wait=5)
    ctx.extra["server_log"] = log
    expect_success(attempt, "a login the server grants", d.hang_bound)


#: Behaviours whose grant gives nobody a login a valid grant would not: the server did
#: send 0, so a module that reads one reply and takes it is not failing open.
SHOULD_BEHAVIOURS = {"two-replies": "the server's first reply is a well-formed 0: a module "
                     "that reads one reply and grants lets in nobody the server did not "
                     "grant, hence SHOULD (a 1 followed by 0 is the MUST partial-reply)"}

for _name, _scenario_name, _args, _what in BEHAVIOURS:
    case(
        f"redir.module.server-{_name}",
        rule="R-M1",
        severity=Severity.SHOULD if _name in SHOULD_BEHAVIOURS else Severity.MUST,
        title=f"Denied when the server {_what}",
        requirement=f"When the server {_what}, pam_authenticate does not return PAM_SUCCESS"
        + (f" ({SHOULD_BEHAVIOURS[_name]})." if _name in SHOULD_BEHAVIOURS else "."),
    )(partial(_scenario, _scenario_name, _args))

for _name, _reply in MALFORMED:
    case(
        f"redir.module.reply-{_name}",
        rule="R-M1",
        severity=Severity.MUST,
        title=f"Reply {_reply[:16]!r} is not a grant",
        requirement=f"A server reply of {_reply[:16]!r}"
        f"{' (' + str(len(_reply)) + ' bytes)' if len(_reply) > 16 else ''} never gives "
        "PAM_SUCCESS: only exactly 0 (or 0 and a newline) grants.",
    )(partial(_scenario, "malformed", {"reply": _reply.hex()}))

for _name, _scenario_name, _args, _what in HANGS:
    case(
        f"redir.module.server-{_name}",
        rule="R-M2",
        severity=Severity.MUST,
        title=f"Bounded denial when the server {_what}",
        requirement=f"When the server {_what}, pam_authenticate returns a denial within the "
        "hang bound (--hang-bound, default the reference module's timeout + 2 s) instead of "
        "blocking the application.",
    )(partial(_hang, _scenario_name, _args))


@case(
    "redir.module.server-reply-before-request",
    exclusive="timing",  # whether the early 0 arrives before the module looks is a race
    rule="R-M1",
    severity=Severity.SHOULD,
    title="Denied when the server replies before the request",
    requirement="A server that sends 0 as soon as it accepts, before reading the request, "
    "should not be granted. A byte stream cannot show when the reply was sent, so only a "
    "module that checks for unsolicited bytes before sending can see it; hence SHOULD.",
)
def reply_before_request(ctx):
    _scenario("reply-before-request", {}, ctx)


@case(
    "redir.module.server-slow-grant",
    rule="R-M2",
    severity=Severity.SHOULD,
    title="A grant that takes 1 s still counts",
    requirement="A server that answers 0 after 1 s is granted: the module's timeout is not "
    "so short that a busy server locks users out.",
)
def slow_grant(ctx):
    d = direct(ctx)
    d.scenario("delay", seconds=1)
    attempt = d.one(probe_service(d), passwords=[PASSWORD])
    record(ctx, "scenario delay 1 s", attempt)
    expect_success(attempt, "a login the server grants after 1 s", d.hang_bound)


_FULL_BACKLOG = r"""
import os, socket, sys, time
path = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
os.chmod(path, 0o600)
s.listen(0)
fillers = []
for _ in range(4):  # fill the queue: later connects block (UNIX sockets do not refuse)
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.setblocking(False)
    try:
        c.connect(path)
    except BlockingIOError:
        pass
    fillers.append(c)
open(path + ".ready", "w").close()
time.sleep(120)
"""


@case(
    "redir.module.server-backlog-full",
    rule="R-M2",
    severity=Severity.MUST,
    title="Bounded denial when the server never accepts",
    requirement="When the server's listen queue is full (it never accepts), connect does not "
    "block the application: pam_authenticate returns a denial within the hang bound.",
)
def backlog_full(ctx):
    d = direct(ctx)
    d.scenario("grant")
    where, sock = d.path("/run/pc-full"), d.path("/run/pc-full/socket")
    d.host.run('rm -rf "$1"; install -d -m 0700 "$1"', args=[where], timeout=5)
    daemon = d.host.start_daemon(["python3", "-c", _FULL_BACKLOG, sock])
    try:
        d.host.wait_for(["test", "-e", sock + ".ready"], timeout=10)
        attempt = d.one(probe_service(d, socket="/run/pc-full/socket", name="pc-full"),
                        passwords=[PASSWORD])
    finally:
        d.host.stop_daemon(daemon, sock)
    record(ctx, "server with a full listen queue", attempt)
    expect_bounded_denial(ctx, attempt, "a login while the server never accepts", d.hang_bound)
