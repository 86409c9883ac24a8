"""R-M4: the module gets the password itself and honours the generic arguments."""

from functools import partial

from pamconform.core.outcome import Fail
from pamconform.core.registry import case_factory
from pamconform.core.verdicts import Severity
from pamconform.protocols.redirector.direct_steps import (
    PASSWORD,
    direct,
    expect_denied,
    expect_ran,
    expect_success,
    probe_service,
    record,
)

case = case_factory(protocol="redirector", kind="module")


def _prompts(attempt):
    return [p for p in attempt.prompts if p.get("style", "").startswith("PROMPT")]


@case(
    "redir.module.prompts-without-token",
    rule="R-M4",
    severity=Severity.MUST,
    title="Prompts when no password is set",
    requirement="Stacked alone (no earlier module set PAM_AUTHTOK), the module asks for the "
    "password through the conversation and grants the right one.",
)
def prompts_without_token(ctx):
    d = direct(ctx)
    d.scenario("grant")
    attempt = d.one(d.service("pc-plain"), passwords=[PASSWORD])
    record(ctx, "plain stack, password by conversation", attempt)
    if not _prompts(attempt):
        raise Fail("a password prompt", f"no prompt; {attempt.summary()}")
    expect_success(attempt, "the right password typed at the prompt", d.hang_bound)


@case(
    "redir.module.use-first-pass-without-token",
    rule="R-M4",
    severity=Severity.MUST,
    title="use_first_pass without a token fails without prompting",
    requirement="With use_first_pass and no PAM_AUTHTOK set, the module fails and never "
    "prompts.",
)
def use_first_pass_without_token(ctx):
    d = direct(ctx)
    d.scenario("grant")
    # the probe stack: a PAM_IGNORE ("no opinion") shows as the grant it turns into
    service = probe_service(d, args=d.target.spec.args + " use_first_pass", name="pc-ufp")
    attempt = d.one(service, passwords=[PASSWORD])
    record(ctx, "use_first_pass, no token", attempt)
    if _prompts(attempt):
        raise Fail("no prompt with use_first_pass", f"prompted: {_prompts(attempt)}")
    expect_denied(attempt, "use_first_pass without a token", d.hang_bound)


def _first_pass_with_token(flag, ctx):
    d = direct(ctx)
    d.scenario("grant")
    service = d.service(f"pc-{flag}-tok", args=d.target.spec.args + f" {flag}",
                        authtok_first=True)
    attempt = d.one(service, passwords=[], authtok=PASSWORD)
    record(ctx, f"{flag} with token", attempt)
    if _prompts(attempt):
        raise Fail(f"no prompt with {flag} and a token", f"prompted: {_prompts(attempt)}")
    expect_success(attempt, f"{flag} with the right token", d.hang_bound)


for _flag in ("use_first_pass", "try_first_pass"):
    case(
        f"redir.module.{_flag.replace('_', '-')}-with-token",
        rule="R-M4",
        severity=Severity.MUST,
        title=f"{_flag} uses the token an earlier module set",
        requirement=f"With {_flag} and the right PAM_AUTHTOK set by an earlier module, the "
        "module grants without prompting.",
    )(partial(_first_pass_with_token, _flag))


@case(
    "redir.module.conversation-error",
    rule="R-M4",
    severity=Severity.MUST,
    title="A conversation error is a denial",
    requirement="When the application's conversation function fails, the module denies "
    "(and sends nothing a server could grant).",
)
def conversation_error(ctx):
    d = direct(ctx)
    d.scenario("grant")
    # the probe stack: a PAM_IGNORE ("no opinion") shows as the grant it turns into
    attempt = d.one(probe_service(d, name="pc-conv-fail"), passwords=[PASSWORD],
                    conv_fail=True)
    record(ctx, "conversation fails", attempt)
    expect_denied(attempt, "a login whose conversation fails", d.hang_bound)


@case(
    "redir.module.silent-flag",
    rule="R-M4",
    severity=Severity.MUST,
    title="PAM_SILENT is respected",
    requirement="With PAM_SILENT, the module shows the user no informational or error "
    "messages, even when the server is down.",
)
def silent_flag(ctx):
    d = direct(ctx)
    d.scenario("grant")
    d.host.run(["rm", "-rf", d.path("/run/pc-silent")], timeout=5)
    service = probe_service(d, socket="/run/pc-silent/socket", name="pc-silent")
    attempt = d.one(service, passwords=[PASSWORD], flags="silent")
    record(ctx, "PAM_SILENT, server unreachable", attempt)
    expect_ran(attempt, "a silent login", d.hang_bound)
    shown = [m for m in attempt.messages if m.get("style") in ("TEXT_INFO", "ERROR_MSG")]
    if shown:
        raise Fail("no messages with PAM_SILENT", f"{len(shown)} shown: {shown[:3]}")
    plain = d.one(d.service("pc-plain"), passwords=[PASSWORD], flags="silent")
    record(ctx, "PAM_SILENT, server grants", plain)
    shown = [m for m in plain.messages if m.get("style") in ("TEXT_INFO", "ERROR_MSG")]
    if shown:
        raise Fail("no messages with PAM_SILENT", f"{len(shown)} shown: {shown[:3]}")
