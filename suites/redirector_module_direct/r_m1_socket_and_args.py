"""R-M1: an unusable socket path or module argument is a denial, never a grant."""

from functools import partial

from pamconform.core.outcome import Fail, Skip
from pamconform.core.registry import case_factory
from pamconform.core.verdicts import Severity
from pamconform.lab.module_target import SOCKET
from pamconform.protocols.redirector.direct_steps import (
    PASSWORD,
    UNUSABLE_PATHS,
    direct,
    expect_denied,
    prepare_unusable_path,
    probe_service,
    received,
    record,
)

case = case_factory(protocol="redirector", kind="module", exclusive="lab-server")

#: The longest socket path sun_path holds (108 bytes with the terminating NUL).
SUN_PATH_BYTES = 107

def _path(prepare, ctx):
    d = direct(ctx)
    path = prepare_unusable_path(d, prepare)
    attempt = d.one(probe_service(d, socket=path), passwords=[PASSWORD])
    record(ctx, f"socket path {path}", attempt)
    ctx.note(attempt.summary())
    expect_denied(attempt, "a login with an unusable socket path", d.hang_bound)
    # PAM_SERVICE_ERR is right too: a file, directory or FIFO there is a misconfiguration
    if attempt.auth not in ("PAM_AUTHINFO_UNAVAIL", "PAM_SERVICE_ERR"):
        ctx.non_strict(f"returned {attempt.auth}; PAM_AUTHINFO_UNAVAIL (or PAM_SERVICE_ERR) "
                       "tells the stack that the server is unreachable, not that the "
                       "password was wrong")


for _name, _prepare, _what in UNUSABLE_PATHS:
    case(
        f"redir.module.path-{_name}",
        rule="R-M1",
        severity=Severity.MUST,
        title=f"Denied when the socket path holds {_what}",
        requirement=f"With {_what} at the socket path, pam_authenticate does not return "
        "PAM_SUCCESS (PAM_AUTHINFO_UNAVAIL or PAM_SERVICE_ERR is expected).",
    )(partial(_path, _prepare))


def _args(args, ctx, play="grant"):
    d = direct(ctx)
    d.scenario(play)
    attempt = d.one(probe_service(d, args=args), passwords=[PASSWORD])
    record(ctx, f"module arguments {args!r}", attempt)
    ctx.note(attempt.summary())
    expect_denied(attempt, f"a login with module arguments {args!r}", d.hang_bound)


@case(
    "redir.module.args-missing",
    rule="R-M1",
    severity=Severity.MUST,
    title="No module argument is a denial",
    requirement="With no socket argument at all, pam_authenticate does not return PAM_SUCCESS "
    "(the original module returns PAM_SUCCESS here, asking no server). The lab's server "
    "denies: a module that falls back to a built-in socket path asks it and is denied.",
)
def args_missing(ctx):
    _args("", ctx, play="deny")


@case(
    "redir.module.args-overlong-path",
    rule="R-M1",
    severity=Severity.MUST,
    title="A socket path longer than sun_path is a denial",
    requirement="A socket path 100 bytes longer than sun_path holds (107 and a NUL) is "
    "refused, never truncated into another path and never a grant: a granting server "
    "listens at its first 107 bytes and must receive nothing.",
)
def args_overlong(ctx):
    d = direct(ctx)
    d.scenario("grant")
    # where this driver puts a lab path adds bytes (the root-less tier: a private root)
    extra = len(d.path("/run/x")) - len("/run/x")
    fill = SUN_PATH_BYTES - extra - len("/run/pc-long/") - len("/") - 8
    if fill < 1:
        raise Skip("this driver's paths are too long to put a socket at the 107-byte cut")
    cut = "/run/pc-long/" + "d" * fill + "/" + "s" * 8  # its lab path: 107 bytes mapped
    long_path = cut + "s" * 100
    at_cut = d.plant(cut, user="root", mode="0600", scenario="grant")
    attempt = d.one(probe_service(d, socket=long_path, name="pc-long"), passwords=[PASSWORD])
    record(ctx, f"socket path of {len(d.path(long_path))} bytes", attempt)
    ctx.note(attempt.summary())
    got = received(at_cut.log(wait=5))
    if got:
        raise Fail("a socket path longer than sun_path never to be truncated into another",
                   f"the server at its first {SUN_PATH_BYTES} bytes received {got!r}")
    expect_denied(attempt, "a login with an over-long socket path", d.hang_bound)


@case(
    "redir.module.args-unknown-option",
    rule="R-M1",
    severity=Severity.SHOULD,
    title="An unknown option is refused",
    requirement="A module line with an unknown option should fail closed (PAM_SERVICE_ERR) "
    "rather than run with a configuration its author did not mean.",
)
def args_unknown(ctx):
    d = direct(ctx)
    _args(d.target.spec.args + " pamconform_no_such_option=1", ctx)


@case(
    "redir.module.request-bytes",
    rule="R-M1",
    severity=Severity.MUST,
    title="The module talks to the configured socket",
    requirement=f"With the server at {SOCKET}, the request arrives there with the user and "
    "password framed as user\\npassword\\n.",
)
def configured_socket(ctx):
    d = direct(ctx)
    proc = d.scenario("deny")
    attempt = d.one(probe_service(d), passwords=[PASSWORD])
    record(ctx, "scenario deny", attempt)
    log = proc.log(wait=5)
    ctx.extra["server_log"] = log
    got = received(log)
    want = b"alice\n" + PASSWORD.encode() + b"\n"
    if got != want:
        raise Fail(f"the server to receive {want!r}", f"{got!r}")
