"""R-M5..R-M7: no password to an untrusted socket, no ambiguous framing, no secret in logs."""

from pamconform.core.outcome import Fail
from pamconform.core.registry import case_factory
from pamconform.core.verdicts import Severity
from pamconform.protocols.redirector.direct_steps import (
    PASSWORD,
    direct,
    expect_denied,
    expect_ran,
    probe_service,
    received,
    record,
)

case = case_factory(protocol="redirector", kind="module")

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


def _newline(ctx, user: str, password: str) -> None:
    d = direct(ctx)
    proc = d.scenario("grant")
    attempt = d.one(probe_service(d), user=user, passwords=[password])
    record(ctx, f"user {user!r} password {password!r}", attempt)
    log = proc.log(wait=5)
    ctx.extra["server_log"] = log
    got = received(log)
    expect_ran(attempt, "a login with a newline in the credentials", d.hang_bound)
    if got:
        raise Fail("nothing sent for credentials that cannot be framed", f"sent {got!r}")
    expect_denied(attempt, "a login with a newline in the credentials", d.hang_bound)


@case(
    "redir.module.newline-in-password",
    rule="R-M6",
    severity=Severity.MUST,
    title="A newline in the password is refused",
    requirement="A password containing \\n (which would frame as a different request) is "
    "refused without contacting the server.",
)
def newline_in_password(ctx):
    _newline(ctx, "alice", "x\nalice")


@case(
    "redir.module.newline-in-user",
    rule="R-M6",
    severity=Severity.MUST,
    title="A newline in the user name is refused",
    requirement="A user name containing \\n is refused without contacting the server.",
)
def newline_in_user(ctx):
    _newline(ctx, "alice\nbob", PASSWORD)


@case(
    "redir.module.no-password-in-logs",
    rule="R-M7",
    severity=Severity.MUST,
    title="Passwords never reach the logs",
    requirement="With the debug option, granted and denied logins write no password to "
    "syslog.",
)
def no_password_in_logs(ctx):
    d = direct(ctx)
    d.start_syslog_sink()
    service = probe_service(d, args=d.target.spec.args + " debug", name="pc-debug")
    wrong = "pc-wrong-Secret-77"
    for scenario, password in (("grant", PASSWORD), ("deny", wrong)):
        d.scenario(scenario)
        record(ctx, f"debug, scenario {scenario}", d.one(service, passwords=[password]))
    logs = d.syslog()
    ctx.extra["syslog"] = logs[-4000:]
    ctx.note(f"{len(logs.splitlines())} syslog lines captured")
    for secret in (PASSWORD, wrong):
        if secret in logs:
            raise Fail("no password in syslog", f"{secret!r} was logged")
