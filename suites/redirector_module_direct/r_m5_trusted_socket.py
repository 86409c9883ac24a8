"""R-M5: no password to a socket an unprivileged user could have planted."""

from pamconform.core.outcome import Fail
from pamconform.core.registry import case_factory
from pamconform.core.verdicts import Severity
from pamconform.protocols.redirector.direct_steps import (
    PASSWORD,
    direct,
    expect_denied,
    probe_service,
    received,
    record,
)

case = case_factory(protocol="redirector", kind="module", exclusive="lab-server")


PLANTED = "/tmp/pc-planted/socket"


def _planted(ctx, *, via_symlink: bool) -> None:
    d = direct(ctx)
    d.scenario("grant")
    planted = d.plant(PLANTED, user="mallory", mode="0666", scenario="grant")
    path = PLANTED
    if via_symlink:
        path = "/tmp/pc-link/socket"
        d.target.box.run("rm -rf /tmp/pc-link; install -d -o mallory -m 0755 "
                         f"/tmp/pc-link; ln -s {PLANTED} {path}; chown -h mallory {path}",
                         timeout=10).check()
    attempt = d.one(probe_service(d, socket=path, name="pc-planted"), passwords=[PASSWORD])
    record(ctx, f"socket planted by mallory at {path}", attempt)
    log = planted.log(wait=5)
    ctx.extra["planted_socket_log"] = log
    got = received(log)
    if PASSWORD.encode() in got:
        raise Fail("the password never to reach a socket an unprivileged user planted",
                   f"the planted socket received {got!r}")
    expect_denied(attempt, "a login through a planted socket", d.hang_bound)


@case(
    "redir.module.planted-socket",
    rule="R-M5",
    severity=Severity.MUST,
    title="A socket planted by an unprivileged user gets nothing",
    requirement="When the configured path is a socket that mallory created (and it grants), "
    "the module neither grants nor sends the password to it.",
)
def planted_socket(ctx):
    _planted(ctx, via_symlink=False)


@case(
    "redir.module.planted-symlink",
    rule="R-M5",
    severity=Severity.MUST,
    title="A symlink to a planted socket gets nothing",
    requirement="When the configured path is a symlink, made by mallory, to mallory's "
    "granting socket, the module neither grants nor sends the password.",
)
def planted_symlink(ctx):
    _planted(ctx, via_symlink=True)


@case(
    "redir.module.world-writable-socket",
    rule="R-M5",
    severity=Severity.SHOULD,
    title="A root socket that anyone may connect to is not trusted",
    requirement="A root-owned socket with mode 0666 should not be trusted: any local user "
    "can reach such a server, so it is not the private channel the protocol assumes.",
)
def world_writable_socket(ctx):
    d = direct(ctx)
    d.scenario("grant")
    d.plant("/run/pc-open/socket", user="root", mode="0666", scenario="grant")
    attempt = d.one(probe_service(d, socket="/run/pc-open/socket", name="pc-open"),
                    passwords=[PASSWORD])
    record(ctx, "root socket with mode 0666", attempt)
    expect_denied(attempt, "a login through a world-writable socket", d.hang_bound)
