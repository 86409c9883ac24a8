"""``pamconform audit``: does a real PAM stack fail open when the auth server misbehaves?

    pamconform audit PAM_FILE [--service NAME] [--module-line N] [--include-dir DIR]
                     [--root DIR] [--stand-in CODE] [--report DIR] [--keep] [--quiet]

Runs the stack in a lab container against every server state (grant, deny, down,
hung, garbage) through the direct libpam driver (a protocol whose profile names a
``stack_audit`` module, as nslcd does for pam_ldap, runs its real module against its
own daemon states instead), and with the Linux-PAM model for
the path through the stack; prints a table and flags every state in which the stack
grants without a valid grant (FAIL-OPEN), with the reason.  See
``pamconform.model.audit`` for what is replaced in the lab and why (the plan and the
analysis, pure) and ``pamconform.lab.stack_audit`` for the run in the lab.

Exit codes: 0 no fail-open, 1 fail-open found, 2 bad input, 3 harness error.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from pamconform import __version__, protocols, report
from pamconform.cli.console import Console
from pamconform.core.errors import HarnessError
from pamconform.core.registry import Case
from pamconform.core.runner import CaseResult, TargetResult, exit_code
from pamconform.core.verdicts import Severity, Verdict
from pamconform.model import audit, codes
from pamconform.protocols import Protocol

#: The rule the audit's cases carry; the protocol is the one whose profile defines it.
RULE = "R-M1"


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "audit", help="run a real PAM stack in the lab against every auth-server state and "
        "flag the states in which it grants without a valid grant (fail-open)")
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
    p.add_argument("--stand-in", default="ignore", metavar="CODE",
                   help="what a module the lab lacks returns (a return code token, "
                   "default ignore)")
    p.add_argument("--report", type=Path, metavar="DIR",
                   help="report directory (default reports/<timestamp>/, reports/latest)")
    p.add_argument("--keep", action="store_true", help="leave the lab container running")
    p.add_argument("--quiet", action="store_true", help="no trace of the fail-open states")
    p.set_defaults(func=cmd_audit)


def cmd_audit(args: argparse.Namespace, console: Console) -> int:
    from pamconform.lab import stack_audit
    from pamconform.lab.stack import StackLab

    known = socket_modules(args.protocol)
    plan = audit.plan(args.pam_file, service=args.service, include_dirs=args.include_dir,
                      module_line=args.module_line, stand_in=args.stand_in, root=args.root,
                      socket_modules=tuple(known))
    owner = known.get(plan.socket.module_name or "")
    runner = (protocols.load(owner.extra["stack_audit"])
              if owner is not None and "stack_audit" in owner.extra else None)
    run = report.Run()
    sock = plan.socket
    console.line(f"pamconform {__version__} audit: {args.pam_file} (service {plan.service}, "
                 f"{'pam.conf' if plan.single_file else 'pam.d'} form)")
    console.line(f"socket module: {sock.origin.where} `{sock.origin.short}` -> "
                 f"pam_{plan.primitive}")
    for problem in plan.shown_problems():
        console.line(f"warning: {problem}")
    started = time.monotonic()

    def stand_ins() -> None:
        for where, module in plan.stand_ins.items():
            console.line(f"stand-in: {where} {module} is not in the lab: pam_debug.so "
                         f"returning PAM_{args.stand_in.upper()}")

    if runner is not None:
        console.line(f"{plan.socket.module} runs for real against the daemon states of "
                     f"{owner.title if owner else '?'}: {runner.NOTE}")
        result = runner.run(plan, keep=args.keep, prepared=stand_ins)
    else:
        with StackLab.open(single_file=plan.single_file, say=lambda _line: None) as lab:
            if args.keep:
                lab.box.keep = True
            stack_audit.prepare(plan, lab)
            stand_ins()
            result = stack_audit.run(plan, lab)
    console.line("")
    for line in audit.render_table(result):
        console.line(line)
    for s in result.states:
        if s.fail_open:
            console.line(f"\nFAIL-OPEN with the server {s.state}: {audit.explain(plan, s)}")
            if not args.quiet and s.model is not None:
                console.line(s.model.render())
        elif s.grant_state and not s.granted:
            console.line(f"\nnote: the stack does not grant even with a valid grant "
                         f"({s.result}): {audit.explain(plan, s)}")
        elif s.model is not None and any("no module set a result" in n
                                         for n in s.model.notes):
            console.line(f"\nwarning: with the server {s.state} no module set a result; "
                         f"libpam fails that ({s.result}), but one line returning PAM_SUCCESS "
                         "(e.g. a priming pam_permit) would make it fail open")
        if not s.model_agrees:
            console.line(f"note: the model says {s.model.name if s.model else '-'} with the "
                         f"server {s.state}, libpam {s.result} (module results that depend "
                         "on the stack's context?)")
    rule = runner.RULE if runner is not None else RULE
    target = _target(args, plan, result, time.monotonic() - started, rule)
    run.targets = [target]
    directory = args.report or report.default_dir(Path("reports"), run.started)
    report.write(run, directory)
    if args.report is None:
        report.point_latest(directory)
    n = len(result.fail_open)
    console.line(f"\n{n} fail-open state(s)" + (": " + ", ".join(
        s.state for s in result.fail_open) if n else ""))
    console.line(f"report: {directory}/index.html (index.json, junit.xml)")
    return exit_code([target])


def _target(args: argparse.Namespace, plan: audit.Plan, result: audit.AuditResult,
            seconds: float, rule: str = RULE) -> TargetResult:
    protocol = _protocol(rule)
    target = TargetResult(name=str(args.pam_file), kind="stack", protocol=protocol)
    target.info.update(
        service=plan.service,
        form="pam.conf" if plan.single_file else "pam.d",
        socket_line=f"{plan.socket.origin.where} {plan.socket.origin.short}",
        primitive=plan.primitive,
        stand_ins=plan.stand_ins,
        problems=plan.shown_problems(),
        files={path: data.decode("latin-1") for path, data in plan.files.items()},
    )
    per_state = seconds / max(1, len(result.states))
    for s in result.states:
        if s.grant_state:
            case = Case(f"audit.{s.state}", rule, Severity.MUST,
                        "A valid grant from the server is granted",
                        "With the server granting, the stack returns PAM_SUCCESS (a stack "
                        "that never grants is not fail-open, but broken).",
                        protocol, "stack", _no_body, "audit")
            verdict = Verdict.PASS if s.granted else Verdict.INFORMATIONAL
            message = "" if s.granted else f"never grants: {s.result}"
        else:
            case = Case(f"audit.{s.state}", rule, Severity.MUST,
                        f"No grant when the server is {s.state}",
                        f"With the server {s.state}, the stack does not return PAM_SUCCESS "
                        "(fails closed).", protocol, "stack", _no_body, "audit")
            verdict = Verdict.FAIL if s.fail_open else Verdict.PASS
            message = (f"FAIL-OPEN: {audit.explain(plan, s)}" if s.fail_open else "")
        if not s.model_agrees:
            message += (" " if message else "") + (
                f"(model: {s.model.name if s.model else '-'}, libpam: {s.result})")
        evidence: dict[str, Any] = {
            "socket module returns": codes.name(s.module_code),
            "libpam": {"pam_start": s.start, "result": s.result,
                       "status": s.real.get("status")},
            "reason": audit.explain(plan, s),
        }
        if s.model is not None:
            evidence["model"] = s.model.name
            evidence["trace"] = s.model.render()
        target.results.append(CaseResult(case, verdict, message, per_state, evidence))
    return target


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
