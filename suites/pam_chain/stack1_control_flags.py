"""STACK-1: control flags, as libpam 1.5 applies them, checked against the Linux-PAM model.

PROTOCOLS.md section 3 has no numbered rules; the stack suite numbers its own:

- STACK-1 (control flags): for every keyword control and the ``[value=action]`` forms,
  the socket module alone and before/after a neighbour (``pam_permit``, ``pam_deny``,
  ``pam_debug auth=ignore``), libpam's result in every server state (grant, deny, down,
  hung, garbage) equals the model's (``pamconform.pamstack.linux_pam``).
- STACK-2 (jumps): jump counts skip lines of the same (sub)stack and record nothing;
  a jump past the end is an error.
- STACK-3 (scoping): ``include`` splices lines in, ``substack`` scopes ``done``/``die``
  to itself; ``reset`` restores the (sub)stack's start; a service without lines for
  a facility falls back to ``other``.
- STACK-4 (no result): when no module set a result (everything ignored), the stack
  fails with ``PAM_PERM_DENIED``.

R-M1 (the module fails closed) is checked by ``m1_module_codes``.  A case whose stack
grants without a valid grant passes (libpam and the model agree) but is reported
INFORMATIONAL with the states where it fails open.
"""

from functools import partial

from pamconform.pamstack.cases import Shape, check_shape
from pamconform.registry import case_factory
from pamconform.verdicts import Severity

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
    ("permit", "auth required pam_permit.so"),
    ("deny", "auth required pam_deny.so"),
    ("ignore", "auth required pam_debug.so auth=ignore"),
]

#: (flag, neighbour) -> states where "before" or "after" grants without a valid grant
FAIL_OPEN = {
    ("sufficient", "permit"): ["deny", "down", "hung", "garbage"],
    ("optional", "permit"): ["deny", "down", "hung", "garbage"],
}


def _alone(ctx):
    for _slug, flag in FLAGS:
        pass
    check_shape(ctx, Shape(tuple(f"auth {flag} {{module}}" for _s, flag in FLAGS[:1])))


@case("chain.alone", rule="STACK-1", severity=Severity.MUST,
      title="The socket module alone, required",
      requirement="`auth required <module>` alone grants exactly when the server grants, "
      "in libpam as in the model.")
def alone(ctx):
    check_shape(ctx, Shape(("auth required {module}",)), expect_fail_open=[])


def _pair(flag, neighbour, ctx):
    before = Shape((f"auth {flag} {{module}}", neighbour))
    after = Shape((neighbour, f"auth {flag} {{module}}"))
    ctx.note("position: module before the neighbour")
    check_shape(ctx, before)
    first = dict(ctx.extra)
    ctx.note("position: module after the neighbour")
    check_shape(ctx, after)
    ctx.extra = {"before": first, "after": dict(ctx.extra)}


for _fslug, _flag in FLAGS:
    case(
        f"chain.{_fslug}.alone",
        rule="STACK-1",
        severity=Severity.MUST,
        title=f"The socket module alone, {_flag}",
        requirement=f"`auth {_flag} <module>` as the only line: libpam's result in every "
        "server state equals the model's.",
    )(partial(lambda flag, ctx: check_shape(ctx, Shape((f"auth {flag} {{module}}",))), _flag))
    for _nslug, _neighbour in NEIGHBOURS:
        case(
            f"chain.{_fslug}.{_nslug}",
            rule="STACK-1",
            severity=Severity.MUST,
            title=f"{_flag} socket module before and after {_neighbour.split()[2]}"
            + (" auth=ignore" if _nslug == "ignore" else ""),
            requirement=f"`auth {_flag} <module>` placed before, then after, `{_neighbour}`: "
            "libpam's result in every server state equals the model's.",
        )(partial(_pair, _flag, _neighbour))
