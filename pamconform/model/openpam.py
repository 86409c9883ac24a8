"""OpenPAM's chain evaluation, as a second model (FreeBSD, macOS, NetBSD).

Written from the OpenPAM documentation (its pages on chains and policies) and its
dispatch rules; there is no OpenPAM in the lab, so this model is checked by unit
tests only.  Differences from Linux-PAM that change results:

- Control flags: ``required``, ``requisite``, ``sufficient``, ``optional`` and
  ``binding`` (Solaris 9; a success ends the chain like ``sufficient``, a failure
  counts like ``required``), plus ``include`` of another service's chain.  There is
  no ``[value=action]`` syntax, no ``substack``, no jumps: an unknown facility or
  control flag invalidates the whole policy (``pam_start`` fails,
  ``PAM_SYSTEM_ERR``).  Keywords are lower-case only.
- ``PAM_IGNORE`` is skipped.  A success counts; with ``sufficient``/``binding`` and
  no earlier failure of a required/binding/requisite module it ends the chain
  (except for ``pam_setcred`` and the preliminary ``pam_chauthtok`` pass, where
  they act as ``optional``).  The first failure's code is kept, overwritten by the
  first failing ``required``/``binding`` module; a failing ``requisite`` ends the
  chain with the first failure's code.
- Result: success unless a required/binding/requisite module failed — except that a
  kept ``PAM_NEW_AUTHTOK_REQD`` (even from an ``optional`` module) stays; and a
  chain with no successful module at all (empty, or everything ignored or
  optional-and-failed) is ``PAM_SYSTEM_ERR``: OpenPAM does not fail open on an
  empty verdict.  (The documentation says "at least one module invoked"; OpenPAM's code asks
  for at least one *success*, which is what this model does.)
- A module without the function returns ``PAM_SYMBOL_ERR``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from pamconform.model import codes
from pamconform.model.parser import FACILITIES, assemble
from pamconform.model.trace import NEGATIVE, POSITIVE, UNDEF, Outcome, Step

CONTROLS = ("required", "requisite", "sufficient", "optional", "binding")
SYMBOL_ERR = 2


@dataclass(frozen=True)
class Rule:
    """One line of an OpenPAM policy."""

    facility: str
    control: str
    module: str
    args: tuple[str, ...]
    where: str
    text: str


@dataclass
class Policy:
    """A service's chains; ``error`` set when the policy is invalid (pam_start fails)."""

    service: str
    chains: dict[str, list[Rule]] = field(default_factory=dict)
    error: str | None = None


def parse(service: str, files: Mapping[str, str], *, depth: int = 0) -> Policy:
    """Read ``files[service]`` (OpenPAM's ``/etc/pam.d`` form), following ``include``.

    >>> parse("x", {"x": "auth [success=ok] pam_unix.so\\n"}).error
    "x:1: invalid control flag '[success=ok]'"
    """
    policy = Policy(service)
    text = files.get(service)
    if text is None:
        policy.error = f"no policy for {service}"
        return policy
    if depth > 16:
        policy.error = f"{service}: include nesting too deep"
        return policy
    raws, err = assemble(text)
    if err is not None:
        policy.error = f"{service}:{err[0]}: {err[1]}"
        return policy
    for raw in raws:
        where = f"{service}:{raw.line}"
        words = raw.text.split()
        facility, control, module = [*words, None, None, None][:3]
        if facility not in FACILITIES:
            policy.error = f"{where}: invalid facility {facility!r}"
            return policy
        if control == "include":
            if module is None:
                policy.error = f"{where}: include without a service"
                return policy
            sub = parse(module, files, depth=depth + 1)
            if sub.error:
                policy.error = sub.error
                return policy
            policy.chains.setdefault(facility, []).extend(sub.chains.get(facility, []))
            continue
        if control not in CONTROLS:
            policy.error = f"{where}: invalid control flag {control!r}"
            return policy
        if module is None:
            policy.error = f"{where}: missing module name"
            return policy
        policy.chains.setdefault(facility, []).append(
            Rule(facility, control, module, tuple(words[3:]), where, " ".join(words)))
    return policy


def evaluate(policy: Policy, primitive: str, module_codes: Callable[[Rule, str], int]) -> Outcome:
    """Run one primitive over the policy's chain (``authenticate``, ``setcred`` ...)."""
    from pamconform.model.linux_pam import FACILITY

    out = Outcome(primitive, codes.SYSTEM_ERR)
    if policy.error:
        out.notes.append(f"invalid policy: {policy.error}")
        return out
    chain = policy.chains.get(FACILITY.get(primitive, "password"), [])
    optional_success = primitive in ("setcred", "chauthtok_prelim")
    err, fail, nsuccess = codes.SUCCESS, False, 0
    for i, rule in enumerate(chain):
        r = module_codes(rule, primitive)
        step = Step(rule.where, rule.text, 0, ran=True, code=r, action=rule.control)
        out.steps.append(step)
        if r == codes.IGNORE:
            step.effect = "ignored"
        elif r == codes.SUCCESS:
            nsuccess += 1
            step.effect = "a success"
            if rule.control in ("sufficient", "binding") and not fail and not optional_success:
                step.effect += "; stop"
                _skip(out, chain[i + 1:], rule.where)
                break
        else:
            if err == codes.SUCCESS:
                err = r
            if rule.control in ("required", "binding") and not fail:
                fail, err = True, r
            step.effect = f"failure, kept {codes.name(err)}"
            if rule.control == "requisite":
                fail = True
                step.effect += "; stop"
                _skip(out, chain[i + 1:], rule.where)
                break
        step.impression = NEGATIVE if fail else (POSITIVE if nsuccess else UNDEF)
        step.status = err
    if not fail and err != codes.NEW_AUTHTOK_REQD:
        err = codes.SUCCESS
    if err == codes.SUCCESS and nsuccess < 1:
        out.notes.append("no module succeeded: PAM_SYSTEM_ERR")
        err = codes.SYSTEM_ERR
    out.code = err
    return out


def _skip(out: Outcome, rules: list[Rule], where: str) -> None:
    for rule in rules:
        out.steps.append(Step(rule.where, rule.text, 0, ran=False, action="skip",
                              effect=f"not reached (chain ended at {where})"))
