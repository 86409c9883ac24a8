"""STACK-1: control flags, as libpam 1.5 applies them, checked against the Linux-PAM model.

The stack rules, as docs/protocols.md ("PAM stacks") defines them:

- STACK-1 (control flags): for every keyword control and the ``[value=action]`` forms,
  the socket module alone and before/after a neighbour (``pam_permit``, ``pam_deny``,
  ``pam_debug auth=ignore``), libpam's result in every server state (grant, deny, down,
  hung, garbage) equals the model's (``pamconform.model.linux_pam``).
- STACK-2 (jumps): jump counts skip lines of the same (sub)stack and record nothing;
  a jump past the end is an error.
- STACK-3 (scoping): ``include`` splices lines in, ``substack`` scopes ``done``/``die``
  to itself; ``reset`` restores the (sub)stack's start; a service without lines for
  a facility falls back to ``other``.
- STACK-4 (no result): when no module set a result (everything ignored), the stack
  fails with ``PAM_PERM_DENIED``.

R-M1 (the module fails closed) is checked by ``r_m1_module_codes``.  Every case passes
when libpam and the model agree; one whose stack grants without a valid grant from the
server is reported INFORMATIONAL, naming the states where it fails open (the known
fail-open shapes are pinned: a test fails if the set changes).
"""

from functools import partial

from pamconform.core.registry import case_factory
from pamconform.core.verdicts import Severity
from pamconform.lab.stack_cases import Shape, check_shape, check_shapes

case = case_factory(protocol="redirector", kind="stack")

FLAGS = [
    ("required", "required"),
    ("requisite", "requisite"),
    ("sufficient", "sufficient"),
    ("optional", "optional"),
    ("ok-bad", "[success=ok default=bad]"),
    ("done-die", "[success=done default=die]"),
]
NEIGHBOURS = [
    ("permit", "auth required pam_permit.so", "pam_permit"),
    ("deny", "auth required pam_deny.so", "pam_deny"),
    ("ignore", "auth required pam_debug.so auth=ignore", "pam_debug auth=ignore"),
]
ALL_BUT_GRANT = ["deny", "down", "hung", "garbage"]

#: (flag, neighbour, position) -> the states where the stack grants without a valid grant
FAIL_OPEN = {
    ("sufficient", "permit", "before"): ALL_BUT_GRANT,
    ("sufficient", "permit", "after"): ALL_BUT_GRANT,
    ("optional", "permit", "before"): ALL_BUT_GRANT,
    ("optional", "permit", "after"): ALL_BUT_GRANT,
}


def _alone(flag, ctx):
    check_shape(ctx, Shape((f"auth {flag} {{module}}",)), expect_fail_open=[])


def _pair(fslug, flag, nslug, neighbour, ctx):
    shapes = {"before": Shape((f"auth {flag} {{module}}", neighbour)),
              "after": Shape((neighbour, f"auth {flag} {{module}}"))}
    check_shapes(ctx, shapes, {p: FAIL_OPEN.get((fslug, nslug, p), []) for p in shapes})


for _fslug, _flag in FLAGS:
    case(
        f"chain.{_fslug}.alone",
        rule="STACK-1",
        severity=Severity.MUST,
        title=f"The socket module alone, {_flag}",
        requirement=f"`auth {_flag} <module>` as the only line: libpam's result equals the "
        "model's in every server state, and it grants only on a valid grant.",
    )(partial(_alone, _flag))
    for _nslug, _neighbour, _nname in NEIGHBOURS:
        case(
            f"chain.{_fslug}.{_nslug}",
            rule="STACK-1",
            severity=Severity.MUST,
            title=f"{_flag} socket module before and after {_nname}",
            requirement=f"`auth {_flag} <module>` before, then after, `{_neighbour}`: "
            "libpam's result equals the model's in every server state.",
        )(partial(_pair, _fslug, _flag, _nslug, _neighbour))
