"""``pamconform audit`` of a stack with pam_ldap: the real module against each daemon state.

pam_ldap asks whatever answers on ``/run/nslcd/socket`` (compiled in), so a state is the
daemon behind that one socket (:meth:`LabModuleTarget.daemon`), not a module argument.
Per state, one agent batch in the nslcd lab container runs the audited stack's primitive
and every module line alone (``[default=ok]``; pam_ldap without ``use_first_pass``, so it
asks for the password itself) as the directory's user ``nancy``, who has no Unix
password: ``pam_unix`` fails and pam_ldap decides.  :func:`pamconform.model.audit.judge`
puts libpam's result beside the model's.

The hang state (a silent daemon) is left out: pam_ldap has no timeout option and waits
its compiled 60 s per read, then returns ``PAM_AUTHINFO_UNAVAIL`` (docs/nslcd.md, N-M2),
the same code as ``down``; running it would add a minute per audit for no other code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pamconform.core.redaction import register_login
from pamconform.drivers.agent import CONTAINER_AGENT_ARGV, container_exec, run_batch
from pamconform.model import codes
from pamconform.model.audit import (
    AuditResult,
    Plan,
    StateResult,
    apply_stand_ins,
    code_of,
    judge,
    line_key,
    summary_line,
)
from pamconform.protocols.hooks import LabOptions

#: The rule the audit's cases carry (docs/nslcd.md#N-M5).
RULE = "N-M5"
#: One line for the console: what the states are and what is left out.
NOTE = ("real nslcd (right and wrong password, slapd stopped), nslcd stopped, and the "
        "scenario server on its socket; no hang state (pam_ldap waits 60 s, then "
        "PAM_AUTHINFO_UNAVAIL as when nslcd is stopped)")
#: What pam_ldap returns in each of the offline audit's server states (no lab): the codes
#: the N-M suite recorded on Debian 12; a silent daemon is given up after 60 s with
#: PAM_AUTHINFO_UNAVAIL, garbage and an early close are PAM_AUTHINFO_UNAVAIL too.
MODEL_STATE_CODES = {
    "grant": codes.SUCCESS,
    "deny": codes.AUTH_ERR,
    "down": codes.AUTHINFO_UNAVAIL,
    "hung": codes.AUTHINFO_UNAVAIL,
    "garbage": codes.AUTHINFO_UNAVAIL,
}
#: Where the probe stacks go (one service per module line, read with --confdir).
PROBE_DIR = "/tmp/pc-audit"
#: pamdrive's bound on one transaction (the states here answer at once or in nslcd's 2 s).
ATTEMPT_TIMEOUT_S = 20.0
#: A wrong password for the directory's user.
WRONG_PASSWORD = "pc-wrong-pw-3Zr9"


@dataclass(frozen=True)
class DaemonState:
    """What answers on the socket: the real nslcd (``daemon``) or a scenario."""

    name: str
    daemon: str  # nslcd | down | slapd-down | scenario
    valid_grant: bool
    scenario: str = ""
    args: dict[str, Any] = field(default_factory=dict)
    right_password: bool = True
    why: str = ""


_SUCCESS_NO_END = [["version"], ["action"], ["begin"], ["int", 0], ["user"], ["int", 0],
                   ["str", ""]]

#: The daemon states, in order (a valid grant only where the daemon grants the login).
STATES: tuple[DaemonState, ...] = (
    DaemonState("grant", "nslcd", True, why="real nslcd, right password"),
    DaemonState("deny", "nslcd", False, right_password=False,
                why="real nslcd, wrong password"),
    DaemonState("ldap-down", "slapd-down", False, why="nslcd up, slapd stopped"),
    DaemonState("down", "down", False, why="nslcd stopped: no socket"),
    DaemonState("sc-grant", "scenario", True, "grant", why="scenario: authc SUCCESS"),
    DaemonState("sc-deny", "scenario", False, "deny", why="scenario: authc AUTH_ERR"),
    DaemonState("close-early", "scenario", False, "close-after-request",
                why="scenario: reads the request, closes"),
    DaemonState("garbage", "scenario", False, "compose",
                {"parts": [["raw", "30676172626167650a"]]},
                why="scenario: replies 0garbage\\n"),
    DaemonState("no-end", "scenario", True, "compose", {"parts": _SUCCESS_NO_END},
                why="scenario: a whole authc SUCCESS entry, closed before RESULT_END "
                "(the decision is complete: N-M1, NON-STRICT)"),
)


def run(plan: Plan, *, keep: bool = False, say: Callable[[str], object] = lambda _l: None,
        prepared: Callable[[], None] = lambda: None) -> AuditResult:
    """Every daemon state in a fresh nslcd lab container; removed afterwards."""
    from .hooks import _nslcd_lab
    from .module_target import LabModule, LabModuleTarget
    from .target import Accounts

    accounts = Accounts()
    register_login(accounts.user.encode(), accounts.password)
    with _nslcd_lab(LabOptions(keep=keep), lambda _line: None) as lab:
        target = LabModuleTarget(lab, LabModule())
        target.setup()
        installed = set(target.box.run("ls -1d /lib/x86_64-linux-gnu/security/*",
                                       timeout=15).check().out.split())
        apply_stand_ins(plan, installed)
        prepared()
        _write_stack(target.box, plan)
        out = []
        for state in STATES:
            result = _one_state(target, plan, state, accounts)
            out.append(result)
            say(summary_line(result))
        return AuditResult(plan, out)


def _write_stack(box: Any, plan: Plan) -> None:
    """The audited files replace the container's PAM configuration, and the probes."""
    if plan.single_file:
        box.run("mv /etc/pam.d /etc/pam.d.moved-away", timeout=15).check()
    else:
        box.run("find /etc/pam.d -mindepth 1 -delete", timeout=15).check()
    for path, data in plan.files.items():
        box.put_file(path, data, 0o644)
    for k, h in enumerate([plan.socket, *plan.probes]):
        box.put_file(f"{PROBE_DIR}/probe{k}", (plan.own_probe_line(plan.files, h) + "\n")
                     .encode("latin-1"), 0o644)


def _one_state(target: Any, plan: Plan, state: DaemonState, accounts: Any) -> StateResult:
    target.daemon(state.daemon)
    if state.daemon == "scenario":
        target.scenario(state.scenario, **state.args)
    password = accounts.password.decode() if state.right_password else WRONG_PASSWORD
    handlers = [plan.socket, *plan.probes]
    reqs = [_request(f"probe{k}", accounts.user, password, plan.primitive, PROBE_DIR)
            for k in range(len(handlers))]
    reqs.append(_request(plan.service, accounts.user, password, plan.primitive, None))
    for i, r in enumerate(reqs):
        r["id"] = i
    results = run_batch(container_exec(target.box), reqs, ATTEMPT_TIMEOUT_S * 2 + 30,
                        agent_argv=[*CONTAINER_AGENT_ARGV, "--jobs", "4"])
    probe_codes = {line_key(h): code_of(results[k]) for k, h in enumerate(handlers)
                   if k > 0}
    return judge(plan, plan.files, state.name, code_of(results[0]), results[-1], probe_codes,
                 valid_grant=state.valid_grant)


def _request(service: str, user: str, password: str, primitive: str,
             confdir: str | None) -> dict[str, Any]:
    argv = ["--service", service, "--user", user]
    if confdir is not None:
        argv += ["--confdir", confdir]
    argv += ["--password", password, "--password", password, "--steps", primitive]
    return {"argv": argv, "timeout": ATTEMPT_TIMEOUT_S}
