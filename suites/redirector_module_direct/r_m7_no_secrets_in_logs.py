"""R-M7: no password in the logs."""

from pamconform.core.outcome import Fail
from pamconform.core.redaction import redact
from pamconform.core.registry import case_factory
from pamconform.core.verdicts import Severity
from pamconform.protocols.redirector.direct_steps import (
    PASSWORD,
    direct,
    probe_service,
    record,
)

case = case_factory(protocol="redirector", kind="module", exclusive="lab-server")


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
    ctx.extra["syslog"] = redact(logs, data=True)[-4000:]  # the module's words are data
    ctx.note(f"{len(logs.splitlines())} syslog lines captured")
    for secret in (PASSWORD, wrong):
        if secret in logs:
            raise Fail("no password in syslog", f"{secret!r} was logged")
