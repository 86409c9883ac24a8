"""The stack audit without a lab: the Linux-PAM model over every plausible context.

For each auth-server state (grant, deny, down, hung, garbage) the socket module returns
the code a conforming module returns in that state (:data:`pamconform.model.modules.
STATE_CODES`, or the codes a protocol's ``stack_audit`` hook names).  Every other line
returns each code it plausibly may (:mod:`pamconform.model.plausible`), one per group its
control treats alike; :func:`explore` walks the combinations depth first, asking only
about the lines the evaluation reaches, so a line jumped over or after a ``die`` adds
nothing, and a line reached again with the same running verdict is not branched again
(the rest of the chain depends on nothing else).  A state other than a granting one in
which some combination makes the stack return ``PAM_SUCCESS`` is FAIL-OPEN; a stack that
grants in no combination even when the server grants never grants.

:func:`disagreements` compares a lab run on real libpam (``--verify``) with this model:
any difference is an error of the harness, not a verdict on the stack.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

from pamconform.model import codes
from pamconform.model.audit import (
    AuditResult,
    Plan,
    StateResult,
    asked_server,
    grant_needs_server,
)
from pamconform.model.linux_pam import Transaction
from pamconform.model.modules import STATE_CODES
from pamconform.model.parser import Handler
from pamconform.model.plausible import distinct, plausible, rootok_checks_the_caller
from pamconform.model.trace import Outcome

#: The most combinations tried per state; beyond it a state without a witness is undecided.
MAX_COMBINATIONS = 200_000


@dataclass
class Combination:
    """One context: what each line the model could not know returned, and the outcome."""

    chosen: list[tuple[Handler, int]]
    outcome: Outcome

    def describe(self, where: Callable[[Handler], str]) -> str:
        """``pam_succeed_if.so (sshd:6) PAM_SUCCESS, ...`` (or that no line varied)."""
        if not self.chosen:
            return "whatever the other modules return"
        return "when " + ", ".join(f"{h.module} ({where(h)}) returns {codes.name(c)}"
                                   for h, c in self.chosen)


@dataclass
class OfflineState:
    """One server state: how many contexts were tried, how many grant, the first that does."""

    state: str
    module_code: int
    grant_state: bool
    tried: int = 0
    granting: int = 0
    witness: Combination | None = None
    example: Combination | None = None  # the first context tried (for the report)
    capped: bool = False
    #: only grants whose path asked the server count (the account phase, see
    #: :func:`pamconform.model.audit.grant_needs_server`); grants that did not
    needs_server: bool = False
    granting_unasked: int = 0

    @property
    def can_grant(self) -> bool:
        return self.witness is not None

    @property
    def fail_open(self) -> bool:
        return self.can_grant and not self.grant_state

    @property
    def undecided(self) -> bool:
        """Too many contexts to try them all, and none of those tried granted."""
        return self.capped and not self.can_grant


@dataclass
class OfflineResult:
    plan: Plan
    states: list[OfflineState] = field(default_factory=list)

    @property
    def fail_open(self) -> list[OfflineState]:
        return [s for s in self.states if s.fail_open]

    @property
    def never_grants(self) -> bool:
        """Even with the server granting, no context makes the stack grant."""
        grants = [s for s in self.states if s.grant_state]
        return bool(grants) and not any(s.can_grant or s.capped for s in grants)


ChoicesFor = Callable[[Handler, str], tuple[int, ...]]


def explore(p: Plan, socket_code: int, choices: ChoicesFor, state: OfflineState,
            limit: int = MAX_COMBINATIONS) -> None:
    """Run the primitive in every combination of ``choices``; fill in ``state``."""
    sock = (p.socket.origin.file, p.socket.origin.line)
    todo: list[tuple[int, ...]] = [()]
    # (line, function, running verdict) whose every continuation is already queued: the
    # rest of the chain depends on nothing else, so a second visit tries no alternatives
    explored: set[tuple[object, ...]] = set()
    while todo:
        if state.tried >= limit:
            state.capped = True
            return
        prefix = todo.pop()
        asked: list[bool] = []  # the socket module has run on this path
        chosen: list[tuple[Handler, int]] = []
        assigned: dict[tuple[int, str], int] = {}
        tx = Transaction(p.config, lambda _h, _f: codes.ABORT)

        def module_codes(h: Handler, function: str, prefix: tuple[int, ...] = prefix,
                         chosen: list[tuple[Handler, int]] = chosen,
                         assigned: dict[tuple[int, str], int] = assigned,
                         tx: Transaction = tx, asked: list[bool] = asked) -> int:
            if (h.origin.file, h.origin.line) == sock:
                asked.append(True)
                return socket_code
            options = choices(h, function)
            if len(options) == 1:
                return options[0]
            key = (h.index, function)
            if key in assigned:
                return assigned[key]
            k = len(chosen)
            if k < len(prefix):
                code = prefix[k]
            else:
                code = options[0]
                # where only grants that asked the server count (the account phase), a
                # path that asked and one that did not continue differently
                node = (h.index, function, tx.position, state.needs_server and bool(asked))
                if node not in explored:
                    explored.add(node)
                    head = tuple(c for _h, c in chosen)
                    todo.extend((*head, alt) for alt in reversed(options[1:]))
            chosen.append((h, code))
            assigned[key] = code
            return code

        tx.module_codes = module_codes
        outcome = tx.run(p.primitive)
        state.tried += 1
        combo = Combination(chosen, outcome)
        if state.example is None:
            state.example = combo
        if outcome.granted:
            state.granting += 1
            if state.needs_server and not asked_server(p, outcome):
                state.granting_unasked += 1
            elif state.witness is None:
                state.witness = combo


def audit(p: Plan, state_codes: Mapping[str, int] = STATE_CODES, *,
          grant_states: Collection[str] = ("grant",), authenticators: Collection[str] = (),
          limit: int = MAX_COMBINATIONS) -> OfflineResult:
    """Every server state, every plausible context of the other lines (no lab)."""
    if p.config.crash or p.config.start_error:
        raise ValueError("the plan's configuration does not load")  # plan() refuses these
    result = OfflineResult(p)
    for state, code in state_codes.items():
        grants = state in grant_states
        cache: dict[tuple[int, str], tuple[int, ...]] = {}

        def choices(h: Handler, function: str, grants: bool = grants,
                    cache: dict[tuple[int, str], tuple[int, ...]] = cache) -> tuple[int, ...]:
            key = (h.index, function)
            if key not in cache:
                cache[key] = distinct(h, plausible(h, function, server_grants=grants,
                                                   authenticators=authenticators,
                                                   service=p.service))
            return cache[key]

        s = OfflineState(state, code, grants, needs_server=grant_needs_server(p) and not grants)
        explore(p, code, choices, s, limit)
        result.states.append(s)
    return result


# --------------------------------------------------------------------------- --verify


def disagreements(offline: OfflineResult, lab: AuditResult, *,
                  authenticators: Collection[str] = ()) -> list[str]:
    """Where real libpam (a lab run) contradicts the offline model: one line each.

    Per lab state: the model fed the codes each line returned there must give libpam's
    result; each of those codes must be one the offline model tries for its line (a
    stand-in the lab put in place of a missing module excepted); the socket module's
    code must be the offline code of a state that grants as much; and a state in which
    libpam grants without a valid grant must be one the offline audit flags.
    """
    p = offline.plan
    out: list[str] = []
    by_line = {(h.origin.file, h.origin.line): h for h in p.config.handlers()}
    flagged = {s.module_code for s in offline.fail_open}
    for s in lab.states:
        out += _state_disagreements(p, s, by_line, offline, authenticators)
        if s.fail_open and s.module_code not in flagged and not rootok_granted(p, s):
            out.append(f"libpam grants with the server {s.state} "
                       f"(socket module {codes.name(s.module_code)}) but the model flags "
                       "no state with that code")
    return out


def rootok_granted(p: Plan, s: StateResult) -> bool:
    """The lab run granted by a ``pam_rootok`` that only a root caller passes (the lab asks
    as root; an attacker is not root)."""
    return any(step.ran and step.handler is not None and step.code == codes.SUCCESS
               and rootok_checks_the_caller(step.handler, p.service)
               for step in (s.model.steps if s.model else []))


def _state_disagreements(p: Plan, s: StateResult, by_line: Mapping[tuple[str, int], Handler],
                         offline: OfflineResult, authenticators: Collection[str]) -> list[str]:
    out = []
    if not s.model_agrees:
        out.append(f"server {s.state}: libpam returns {s.result}, the model fed libpam's "
                   f"module codes {s.model.name if s.model else 'nothing'}")
    same = [o for o in offline.states if o.grant_state == s.grant_state]
    if s.module_code is not None and s.module_code not in {o.module_code for o in same}:
        out.append(f"server {s.state}: the socket module returns "
                   f"{codes.name(s.module_code)}, a code the model gives no "
                   f"{'granting' if s.grant_state else 'non-granting'} state")
    sock = (p.socket.origin.file, p.socket.origin.line)
    for step in (s.model.steps if s.model else []):
        if not step.ran or step.handler is None or step.code is None:
            continue
        key = (step.handler.origin.file, step.handler.origin.line)
        h = by_line.get(key)
        if key == sock or h is None or h.kind != "module":
            continue
        if f"{key[0]}:{key[1]}" in p.stand_ins:
            continue
        allowed = plausible(h, _function(p.primitive), server_grants=s.grant_state,
                            authenticators=authenticators, service=p.service)
        if rootok_checks_the_caller(h, p.service):
            continue  # the lab asks as root: its pam_rootok grants, an attacker's would not
        if step.code not in allowed:
            out.append(f"server {s.state}: {h.module} ({p.user_where(h)}) returns "
                       f"{codes.name(step.code)} in the lab, a code the model never tries "
                       f"for it ({_codes_text(allowed)})")
    return out


def _codes_text(allowed: tuple[int, ...]) -> str:
    if len(allowed) > 4 and codes.SUCCESS not in allowed:
        return "any code but PAM_SUCCESS"
    return ", ".join(codes.name(c) for c in allowed)


def _function(primitive: str) -> str:
    return "chauthtok_prelim" if primitive == "chauthtok" else primitive
