"""STACK-4: a stack in which no module set a result fails (rules: ``stack1_control_flags``)."""

from pamconform.core.registry import case_factory
from pamconform.core.verdicts import Severity
from pamconform.lab.stack_cases import Shape, check_shape

case = case_factory(protocol="redirector", kind="stack")

DOWN_IS_IGNORED = "auth [success=done authinfo_unavail=ignore default=die] {module}"


@case("chain.ignore.everything-ignored-fails", rule="STACK-4", severity=Severity.MUST,
      title="Everything returns PAM_IGNORE: PAM_PERM_DENIED",
      requirement="pam_debug auth=ignore twice and the module with `authinfo_unavail=ignore`: "
      "with the server down or hung nothing sets a result and the stack fails with "
      "PAM_PERM_DENIED; libpam equals the model.")
def everything_ignored(ctx):
    check_shape(ctx, Shape(("auth required pam_debug.so auth=ignore", DOWN_IS_IGNORED,
                            "auth optional pam_debug.so auth=ignore")), expect_fail_open=[])


@case("chain.ignore.primed-with-permit", rule="STACK-4", severity=Severity.MUST,
      title="Everything else ignored, then Debian's 'prime the stack' pam_permit: fails open",
      requirement="The same stack ending in `auth required pam_permit.so`: when the server "
      "is down or hung the module is ignored and pam_permit alone grants; libpam equals "
      "the model.")
def primed(ctx):
    check_shape(ctx, Shape(("auth required pam_debug.so auth=ignore", DOWN_IS_IGNORED,
                            "auth required pam_permit.so")),
                expect_fail_open=["down", "hung"])
