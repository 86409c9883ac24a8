"""Linux-PAM's stack evaluation, as a model: a chain's result from each module's return code.

Written from Linux-PAM's documentation and its dispatch logic (``libpam/pam_dispatch.c``,
read, not copied), and checked against real libpam 1.5.2 in the lab.  One pass over a
chain keeps two values: an *impression* (undecided, positive, negative) and a
*status* (the code to return), starting as undecided / ``PAM_PERM_DENIED``.  For each
entry, the module's return code picks an action from the line's table:

- ``ok`` (``required`` on success): if undecided, or positive with status success,
  the impression turns positive and the status becomes the code — except that a
  ``PAM_IGNORE`` is not recorded in a frozen chain (below);
- ``done`` (``sufficient`` on success): as ``ok``, then, if positive, stop;
- ``bad`` (``required`` on failure): the first failure turns the impression
  negative and its code becomes the status (``PAM_IGNORE`` is recorded as
  ``PAM_PERM_DENIED``); later failures change nothing;
- ``die`` (``requisite`` on failure): as ``bad``, then stop;
- ``ignore``: nothing; ``reset``: back to the values at the start of the
  (sub)stack;
- a jump ``N``: skip the next N entries of the same (sub)stack level, a nested
  substack counting as one; jumping past its end is an error (negative,
  ``PAM_PERM_DENIED``).  A jump records nothing.

A stopped (``done``/``die``) substack only skips the rest of that substack; the
impression and status are shared with the enclosing stack.  After the last entry a
status of success without a positive impression becomes ``PAM_PERM_DENIED``; an
empty chain, or one where every module was ignored, is ``PAM_PERM_DENIED`` — for
every facility.  A line that failed to parse fails with ``PAM_PERM_DENIED`` when
reached; a module that is missing, or lacks the function, returns
``PAM_MODULE_UNKNOWN``; ``PAM_INCOMPLETE`` ends the call at once.

``pam_setcred`` walks the auth chain with the codes ``pam_authenticate`` got
("frozen" chain) to pick the actions, and records the codes setcred returns;
``pam_close_session`` does the same with ``pam_open_session``'s.
``pam_chauthtok`` runs the password chain twice (preliminary check, then, if that
succeeded, the update), neither frozen.

Dialect: :data:`LINUX_PAM_1_5` (the lab's libpam 1.5.2) records nothing for a jump in
a frozen chain; :data:`LINUX_PAM_GIT` (newer sources) treats such a jump as ``ok``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pamconform.model import codes
from pamconform.model.parser import (
    BAD,
    DIE,
    DONE,
    IGNORE,
    OK,
    RESET,
    Config,
    Handler,
    action_name,
)
from pamconform.model.trace import NEGATIVE, POSITIVE, UNDEF, Outcome, Run, Step

#: Module functions: what a module is asked (pam_debug's argument names differ).
FUNCTIONS = ("authenticate", "setcred", "acct_mgmt", "open_session", "close_session",
             "chauthtok_prelim", "chauthtok_update")

#: primitive -> facility
FACILITY = {"authenticate": "auth", "setcred": "auth", "acct_mgmt": "account",
            "open_session": "session", "close_session": "session", "chauthtok": "password"}

#: primitive -> the primitive whose codes it follows (a frozen chain)
FROZEN_BY = {"setcred": "authenticate", "close_session": "open_session"}

#: (handler, module function) -> return code; PAM_MODULE_UNKNOWN for a missing module.
ModuleCodes = Callable[[Handler, str], int]


@dataclass(frozen=True)
class Dialect:
    """Differences between Linux-PAM versions that change results."""

    name: str
    #: a jump in a frozen chain (setcred, close_session) also acts as ``ok``
    frozen_jump_records: bool


LINUX_PAM_1_5 = Dialect("linux-pam-1.5.2", frozen_jump_records=False)
LINUX_PAM_GIT = Dialect("linux-pam-git", frozen_jump_records=True)


class Transaction:
    """One PAM handle: primitives run in order share the frozen-chain codes.

    >>> from pamconform.model.parser import load_text
    >>> cfg = load_text("auth sufficient pam_permit.so\\nauth required pam_deny.so\\n")
    >>> Transaction(cfg, lambda h, f: 0 if h.module_name == "pam_permit" else 7).run(
    ...     "authenticate").name
    'PAM_SUCCESS'
    """

    def __init__(self, config: Config, module_codes: ModuleCodes,
                 dialect: Dialect = LINUX_PAM_1_5) -> None:
        self.config = config
        self.module_codes = module_codes
        self.dialect = dialect
        self.frozen: dict[str, dict[int, int]] = {}
        #: the running verdict (impression, status, saved levels) when a module is asked:
        #: what the rest of the chain depends on (the offline audit merges equal ones)
        self.position: tuple[object, ...] = ()

    def run(self, primitive: str) -> Outcome:
        """Run one primitive (``authenticate``, ``setcred``, ... ``chauthtok``)."""
        facility = FACILITY[primitive]
        chain = self.config.chain(facility)
        notes = []
        if self.config.uses_other(facility):
            notes.append(f"no {facility} line for the service: the 'other' chain is used")
        if primitive == "chauthtok":
            first = self._dispatch("chauthtok", chain, "chauthtok_prelim", None, {})
            first.notes[:0] = [*notes, "preliminary check (PAM_PRELIM_CHECK)"]
            if first.code != codes.SUCCESS:
                return first
            second = self._dispatch("chauthtok", chain, "chauthtok_update", None, {})
            second.steps = first.steps + second.steps
            second.notes = [*first.notes, "update (PAM_UPDATE_AUTHTOK)", *second.notes]
            return second
        frozen_by = FROZEN_BY.get(primitive)
        record: dict[int, int] = {}
        cached = self.frozen.get(frozen_by, {}) if frozen_by else None
        out = self._dispatch(primitive, chain, primitive, cached, record)
        if frozen_by is None:
            self.frozen[primitive] = record
        out.notes[:0] = notes
        return out

    # ------------------------------------------------------------------ the walk
    def _dispatch(self, primitive: str, chain: Sequence[Handler], function: str,
                  cached: dict[int, int] | None, record: dict[int, int]) -> Outcome:
        out = Outcome(primitive, codes.PERM_DENIED)
        if not chain:
            out.notes.append("no module in this chain: PAM_PERM_DENIED")
            return out
        impression, status = UNDEF, codes.PERM_DENIED
        saved = {0: (UNDEF, codes.PERM_DENIED)}
        prev_level, i, n = 0, 0, len(chain)
        while i < n:
            h = chain[i]
            level = h.level
            if prev_level < level:
                saved[level] = (impression, status)
            prev_level = level
            step = Step(h.origin.where, h.origin.short, level, ran=True, handler=h)
            out.steps.append(step)
            if h.kind == "substack":
                step.ran, step.action = False, "substack"
                step.effect = f"enter substack {h.module}"
                step.impression, step.status = impression, status
                i += 1
                continue
            if h.kind == "must_fail":
                retval = codes.PERM_DENIED
                step.effect = f"broken line ({h.reason}) "
            else:
                self.position = (impression, status, tuple(sorted(saved.items())))
                retval = self.module_codes(h, function)
            step.code = retval
            if retval == codes.INCOMPLETE:
                step.action, step.effect = "-", "PAM_INCOMPLETE: the call returns at once"
                out.code = codes.INCOMPLETE
                return out
            if cached is None:
                record[h.index] = retval
                chain_code = retval
            else:
                chain_code = cached.get(h.index, retval)
                if chain_code != retval:
                    step.cached = chain_code
            if 0 <= chain_code < codes.COUNT:
                action = h.actions[chain_code]
            else:
                retval, action = codes.PERM_DENIED, BAD
                step.effect += "code out of range: treated as PAM_PERM_DENIED "
            step.action = action_name(action)
            before = (impression, status)
            stop = False
            if action == RESET:
                impression, status = saved.get(level, (UNDEF, codes.PERM_DENIED))
                step.effect += "reset to the substack's start"
            elif action in (OK, DONE):
                open_verdict = impression == UNDEF or (
                    impression == POSITIVE and status == codes.SUCCESS)
                # a PAM_IGNORE is recorded only where it also picked the action
                if open_verdict and (retval != codes.IGNORE or chain_code == retval):
                    impression, status = POSITIVE, retval
                if impression == POSITIVE and action == DONE:
                    stop = True
            elif action in (BAD, DIE):
                if impression != NEGATIVE:
                    impression = NEGATIVE
                    status = codes.PERM_DENIED if retval == codes.IGNORE else retval
                stop = action == DIE
            elif action == IGNORE:
                pass
            else:
                if action > 0:
                    if cached is not None and self.dialect.frozen_jump_records and (
                            impression == UNDEF
                            or (impression == POSITIVE and status == codes.SUCCESS)) and (
                            retval != codes.IGNORE or chain_code == retval):
                        impression, status = POSITIVE, retval
                    j, left = i, action
                    while j + 1 < n and chain[j + 1].level >= level and left > 0:
                        j += 1
                        while j + 1 < n and chain[j + 1].level > level:
                            j += 1
                        left -= 1
                    self._skipped(out, chain, i + 1, j + 1, f"jumped over (from {h.origin.where})")
                    i = j
                    action = left
                if action:
                    impression, status = NEGATIVE, codes.PERM_DENIED
                    step.effect += "jump past the end of the (sub)stack: "
            step.effect += _describe(before, (impression, status), stop)
            step.impression, step.status = impression, status
            if stop:
                j = i
                while j + 1 < n and chain[j + 1].level >= level:
                    j += 1
                what = "done" if action == DONE else "die"
                self._skipped(out, chain, i + 1, j + 1, f"not reached ({what} at {h.origin.where})")
                i = j
            i += 1
        if status == codes.SUCCESS and impression != POSITIVE:
            out.notes.append("success without a positive impression: PAM_PERM_DENIED")
            status = codes.PERM_DENIED
        if impression == UNDEF:
            out.notes.append("no module set a result: PAM_PERM_DENIED")
        out.code = status
        return out

    @staticmethod
    def _skipped(out: Outcome, chain: Sequence[Handler], start: int, end: int, why: str) -> None:
        for h in chain[start:end]:
            out.steps.append(Step(h.origin.where, h.origin.short, h.level, ran=False,
                                  action="skip", effect=why, handler=h))


def _describe(before: tuple[int, int], after: tuple[int, int], stop: bool) -> str:
    if before == after:
        text = "no change"
    else:
        sign = {POSITIVE: "+", NEGATIVE: "-", UNDEF: "?"}[after[0]]
        text = f"now {sign} {codes.name(after[1])}"
    return text + ("; stop" if stop else "")


#: What pamdrive's ``--steps all`` would run, in order (chauthtok only when asked).
DEFAULT_STEPS = ("authenticate",)


def run(config: Config, module_codes: ModuleCodes, steps: Sequence[str] = DEFAULT_STEPS, *,
        keep_going: bool = False, dialect: Dialect = LINUX_PAM_1_5) -> Run:
    """Model a pamdrive run: pam_start, then ``steps`` (stopping at a failure unless
    ``keep_going``)."""
    if config.crash:
        return Run(codes.ABORT, crash=config.crash)
    if config.start_error:
        return Run(codes.ABORT)
    tx = Transaction(config, module_codes, dialect)
    result = Run(codes.SUCCESS)
    for primitive in steps:
        outcome = tx.run(primitive)
        result.outcomes.append(outcome)
        if outcome.code != codes.SUCCESS and not keep_going:
            break
    return result
