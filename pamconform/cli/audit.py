"""``pamconform audit``: does a real PAM stack fail open when the auth server misbehaves?

    pamconform audit PAM_FILE [--service NAME] [--module-line N] [--include-dir DIR]
                     [--root DIR] [--protocol NAME] [--strict] [--trace] [--quiet]
                     [--report DIR] [--verify [--stand-in CODE] [--keep]]

By default no lab, no Docker, no root: the Linux-PAM model
(:mod:`pamconform.model.audit_offline`) evaluates the stack in every auth-server state
(grant, deny, down, hung, garbage) and every plausible result of the other modules, and
flags each state in which some result makes it grant (FAIL-OPEN), one line each, with
the results that do.  ``--verify`` also replays the states on real libpam in the lab
(:mod:`pamconform.lab.stack_audit`, or the protocol's ``stack_audit`` hook, as nslcd's
for pam_ldap) and reports any disagreement between libpam and the model as an error of
the harness.

Exit codes: 0 no fail-open, 1 fail-open found (or, with ``--strict``, a stack that never
grants), 2 bad input, 3 harness error (model and libpam disagree; no engine for
``--verify``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from pamconform import __version__, protocols, report
from pamconform.cli.console import Console
from pamconform.core.errors import HarnessError, UsageError
from pamconform.core.options import directory
from pamconform.core.preflight import check_report_dir
from pamconform.core.redaction import Verbatim
from pamconform.core.registry import Case
from pamconform.core.runner import CaseResult, TargetResult
from pamconform.core.verdicts import Severity, Verdict
from pamconform.model import audit, audit_offline, codes
from pamconform.model.modules import STATE_CODES
from pamconform.protocols import Protocol

#: The rule the audit's cases carry; the protocol is the one whose profile defines it.
RULE = "R-M1"


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "audit", help="evaluate a PAM stack against every auth-server state (no Docker) and "
        "flag the states in which it grants without a valid grant (fail-open); --verify "
        "replays them on real libpam in the lab")
    p.add_argument("pam_file", type=Path, help="the stack: a pam.d file (includes resolve in "
                   "its directory) or a pam.conf (with --service)")
    p.add_argument("--service", help="the service name (default: the file's name)")
    p.add_argument("--module-line", type=int, metavar="N",
                   help="the socket module's line in PAM_FILE (default: the first line "
                   "naming a module a registered protocol declares, e.g. pam_redirector "
                   "or pam_ldap)")
    p.add_argument("--protocol", choices=[q.name for q in protocols.all_protocols()
                                          if socket_modules(q.name)],
                   help="look only for the socket module of this protocol (default: any "
                   "registered protocol's module)")
    p.add_argument("--include-dir", type=Path, action="append", default=[], metavar="DIR",
                   help="what stands for /etc/pam.d, where includes are looked up (default: "
                   "PAM_FILE's directory, or ROOT/etc/pam.d with --root; repeatable)")
    p.add_argument("--root", type=Path, metavar="DIR",
                   help="the audited tree, read as / of the target host: absolute includes, "
                   "'..' and symlinks resolve inside it, never elsewhere on this host "
                   "(default: PAM_FILE's directory)")
    p.add_argument("--strict", action="store_true",
                   help="a stack that never grants, even with the server granting, is "
                   "exit 1 (default: a warning)")
    p.add_argument("--verify", action="store_true",
                   help="also replay every state on real libpam in the lab (Docker) and "
                   "report any disagreement with the model as a harness error (exit 3)")
    p.add_argument("--stand-in", default="ignore", metavar="CODE",
                   help="with --verify: what a module the lab lacks returns (a return code "
                   "token, default ignore)")
    p.add_argument("--report", type=directory, metavar="DIR",
                   help="report directory (default reports/<timestamp>/, reports/latest)")
    p.add_argument("--keep", action="store_true",
                   help="with --verify: leave the lab container running")
    p.add_argument("--trace", action="store_true",
                   help="print the model's path through the stack for each fail-open state")
    p.add_argument("--quiet", action="store_true",
                   help="only the fail-open lines and the summary (no header, no table)")
    p.set_defaults(func=cmd_audit)


def cmd_audit(args: argparse.Namespace, console: Console) -> int:
    if args.report is not None:  # before the work, not after it
        check_report_dir(args.report)
    known = socket_modules(args.protocol)
    plan = audit.plan(args.pam_file, service=args.service, include_dirs=args.include_dir,
                      module_line=args.module_line, stand_in=args.stand_in, root=args.root,
                      socket_modules=tuple(known))
    missing = plan.missing_includes()
    if missing:
        raise UsageError(missing[0] + ": copy it beside the stack (or give --include-dir)")
    owner = known.get(plan.socket.module_name or "")
    runner = (protocols.load(owner.extra["stack_audit"])
              if owner is not None and "stack_audit" in owner.extra else None)
    others = tuple(name for name in known if name != plan.socket.module_name)
    say = (lambda _line: None) if args.quiet else console.line
    sock = plan.socket
    say(f"pamconform {__version__} audit: {args.pam_file} (service {plan.service}, "
        f"{'pam.conf' if plan.single_file else 'pam.d'} form, "
        f"{'model and real libpam' if args.verify else 'model, no lab'})")
    say(f"socket module: {plan.user_where(sock)} `{sock.origin.short}` -> pam_{plan.primitive}")
    for problem in plan.shown_problems():
        console.line(f"warning: {problem}")
    started = time.monotonic()
    offline = audit_offline.audit(plan, _state_codes(runner), authenticators=others)
    say("")
    for line in render_offline(offline):
        say(line)
    lab = _verify(args, plan, runner, owner, say) if args.verify else None
    disagree = (audit_offline.disagreements(offline, lab, authenticators=others)
                if lab is not None else [])
    for s in offline.fail_open:
        assert s.witness is not None
        console.line(f"FAIL-OPEN with the server {s.state} (socket module "
                     f"{codes.name(s.module_code)}): grants {s.witness.describe(plan.user_where)}"
                     f"; {audit.explain_outcome(plan, s.witness.outcome, granted=True)}")
        if args.trace:
            console.line(s.witness.outcome.render())
    unasked = [s.state for s in offline.states if s.granting_unasked]
    if unasked:
        say(f"note: with the server {', '.join(unasked)}, the stack grants "
            "pam_acct_mgmt in some contexts without asking the socket module (another "
            "module vouches for the account, as in every state): not a fail-open, the "
            "server has no veto there (docs/audit.md#account)")
    for s in offline.states:
        if s.undecided:
            console.line(f"ERROR: with the server {s.state} the stack has more than "
                         f"{s.tried} combinations of module results; none of those tried "
                         "grants, the rest were not tried")
    if offline.never_grants:
        grant = next(s for s in offline.states if s.grant_state)
        example = grant.example.outcome if grant.example else None
        console.line(f"{'NEVER GRANTS' if args.strict else 'warning'}: the stack does not "
                     "grant in any combination even with the server granting"
                     + (f" ({example.name}): "
                        f"{audit.explain_outcome(plan, example, granted=False)}"
                        if example is not None else ""))
    for line in disagree:
        console.line(f"ERROR (harness): model and libpam disagree: {line}")
    rule = runner.RULE if runner is not None and lab is not None else RULE
    target = _target(args, plan, offline, lab, disagree, time.monotonic() - started, rule)
    run = report.Run()
    run.targets = [target]
    directory = args.report or report.default_dir(Path("reports"), run.started)
    report.write(run, directory)
    if args.report is None:
        report.point_latest(directory)
    n = len(offline.fail_open)
    console.line(f"{n} fail-open state(s)" + (": " + ", ".join(
        s.state for s in offline.fail_open) if n else ""))
    console.line("report: ", Verbatim(f"{directory}/index.html"), " (index.json, junit.xml)")
    if n or (args.strict and offline.never_grants):
        return 1  # a fail-open found wins over a harness error elsewhere
    return 3 if disagree or any(s.undecided for s in offline.states) else 0


def _state_codes(runner: ModuleType | None) -> dict[str, int]:
    """The socket module's code per server state: the protocol hook's, else the
    reference module's (R-M1: a conforming module fails closed with these)."""
    return dict(getattr(runner, "MODEL_STATE_CODES", STATE_CODES))


def _verify(args: argparse.Namespace, plan: audit.Plan, runner: ModuleType | None,
            owner: Protocol | None, say: Any) -> audit.AuditResult:
    """The same states on real libpam in the lab (Docker)."""
    from pamconform.lab import stack_audit
    from pamconform.lab.stack import StackLab

    def stand_ins() -> None:
        for where, module in plan.stand_ins.items():
            file, _sep, line = where.rpartition(":")
            say(f"stand-in: {plan.user_file(file)}:{line} {module} is not in the lab: "
                f"pam_debug.so returning PAM_{args.stand_in.upper()}")

    say("")
    if runner is not None:
        say(f"{plan.socket.module} runs for real against the daemon states of "
            f"{owner.title if owner else '?'}: {runner.NOTE}")
        result: audit.AuditResult = runner.run(plan, keep=args.keep, prepared=stand_ins)
    else:
        with StackLab.open(single_file=plan.single_file, say=lambda _line: None,
                           keep=args.keep) as lab:
            stack_audit.prepare(plan, lab)
            stand_ins()
            result = stack_audit.run(plan, lab)
    say("real libpam (lab):")
    for line in audit.render_table(result):
        say(line)
    if any(audit_offline.rootok_granted(plan, s) for s in result.states):
        say(f"note: the lab asks as root, so pam_rootok grants there; in {plan.service}, "
            "run as its caller, it grants only a caller who is root already, not an "
            "attacker (docs/audit.md)")
    return result


def render_offline(result: audit_offline.OfflineResult) -> list[str]:
    """The model's table: per state, the socket module's code, contexts tried, verdict."""
    width = max([8, *(len(s.state) for s in result.states)])
    lines = [f"{'state':<{width}} {'socket module returns':<22} {'contexts':>8} "
             f"{'granting':>8}  verdict"]
    for s in result.states:
        if s.undecided:
            verdict = "UNDECIDED"
        elif s.grant_state:
            verdict = "grants" if s.can_grant else "NEVER GRANTS"
        else:
            verdict = "FAIL-OPEN" if s.fail_open else "denies"
        lines.append(f"{s.state:<{width}} {codes.name(s.module_code):<22} {s.tried:>8} "
                     f"{s.granting:>8}  {verdict}")
    return lines


def _target(args: argparse.Namespace, plan: audit.Plan, offline: audit_offline.OfflineResult,
            lab: audit.AuditResult | None, disagree: list[str], seconds: float,
            rule: str = RULE) -> TargetResult:
    protocol = _protocol(rule)
    target = TargetResult(name=str(args.pam_file), kind="stack", protocol=protocol)
    target.info.update(
        mode="verify" if lab is not None else "model",
        service=plan.service,
        form="pam.conf" if plan.single_file else "pam.d",
        socket_line=f"{plan.user_where(plan.socket)} {plan.socket.origin.short}",
        primitive=plan.primitive,
        stand_ins=plan.stand_ins,
        problems=plan.shown_problems(),
        files={plan.user_file(path): data.decode("latin-1")
               for path, data in plan.files.items()},
    )
    per_state = seconds / max(1, len(offline.states))
    for s in offline.states:
        target.results.append(_state_case(plan, s, rule, protocol, per_state, args.strict))
    if lab is not None:
        for ls in lab.states:
            target.results.append(_lab_case(plan, ls, rule, protocol, disagree))
    return target


def _state_case(plan: audit.Plan, s: audit_offline.OfflineState, rule: str, protocol: str,
                seconds: float, strict: bool) -> CaseResult:
    witness = s.witness or s.example
    evidence: dict[str, Any] = {
        "socket module returns": codes.name(s.module_code),
        "contexts tried": s.tried, "contexts granting": s.granting,
    }
    if witness is not None:
        evidence["context"] = witness.describe(plan.user_where)
        evidence["model"] = witness.outcome.name
        evidence["trace"] = witness.outcome.render()
    if s.grant_state:
        case = Case(f"audit.{s.state}", rule, Severity.MUST,
                    "A valid grant from the server can be granted",
                    "With the server granting, some results of the other modules make the "
                    "stack return PAM_SUCCESS (a stack that never grants is not fail-open, "
                    "but broken).", protocol, "stack", _no_body, "audit")
        never = not s.can_grant and not s.capped
        verdict = (Verdict.PASS if not never else
                   Verdict.FAIL if strict else Verdict.INFORMATIONAL)
        message = "never grants" if never else ""
    else:
        case = Case(f"audit.{s.state}", rule, Severity.MUST,
                    f"No grant when the server is {s.state}",
                    f"With the server {s.state}, no plausible results of the other modules "
                    "make the stack return PAM_SUCCESS (fails closed).", protocol, "stack",
                    _no_body, "audit")
        verdict = Verdict.FAIL if s.fail_open else (
            Verdict.ERROR if s.undecided else Verdict.PASS)
        message = ""
        if s.fail_open and s.witness is not None:
            message = (f"FAIL-OPEN: grants {s.witness.describe(plan.user_where)}; "
                       + audit.explain_outcome(plan, s.witness.outcome, granted=True))
        elif s.undecided:
            message = f"undecided: {s.tried} combinations tried, none grants"
    return CaseResult(case, verdict, message, seconds, evidence)


def _lab_case(plan: audit.Plan, s: audit.StateResult, rule: str, protocol: str,
              disagree: list[str]) -> CaseResult:
    """One lab state: libpam beside the model (ERROR where they disagree)."""
    mine = [d for d in disagree if d.startswith(f"server {s.state}:")
            or f"server {s.state} " in d]
    case = Case(f"audit.verify.{s.state}", rule, Severity.MUST,
                f"Real libpam agrees with the model (server {s.state})",
                "Replayed on real libpam in the lab, the stack returns what the model says "
                "for the codes each line returned there.", protocol, "stack", _no_body, "audit")
    evidence: dict[str, Any] = {
        "socket module returns": codes.name(s.module_code),
        "libpam": {"pam_start": s.start, "result": s.result, "status": s.real.get("status")},
        "reason": audit.explain(plan, s),
    }
    if s.model is not None:
        evidence["model"] = s.model.name
        evidence["trace"] = s.model.render()
    verdict = Verdict.ERROR if mine else Verdict.PASS
    return CaseResult(case, verdict, "; ".join(mine), 0.0, evidence)


def _protocol(rule: str = RULE) -> str:
    """The registered protocol whose rules include ``rule``."""
    found = protocols.for_rule(rule)
    if found is None:
        raise HarnessError(f"no registered protocol defines {rule}")
    return found.name


def socket_modules(protocol: str | None = None) -> dict[str, Protocol]:
    """Module name (``pam_ldap``) -> the protocol that declares it, from the registry
    (only ``protocol``'s when given).

    A profile declares its module files in ``extra["pam_modules"]``; a reference module's
    file counts too.
    """
    out: dict[str, Protocol] = {}
    chosen = [protocols.get(protocol)] if protocol else protocols.all_protocols()
    for proto in chosen:
        files = list(proto.extra.get("pam_modules", ()))
        if proto.reference_module is not None:
            files.append(proto.reference_module.so)
        for name in files:
            out.setdefault(name.removesuffix(".so"), proto)
    return out


def _no_body(ctx: Any) -> None:
    """Audit cases are graded from the lab run, not by a body."""
