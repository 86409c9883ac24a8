"""STACK-2: jump counts in ``[value=N]`` controls (see ``stack1_control_flags`` for the rules)."""

from pamconform.core.registry import case_factory
from pamconform.core.verdicts import Severity
from pamconform.lab.stack_cases import Shape, check_shape

case = case_factory(protocol="redirector", kind="stack")


@case("chain.jump.debian-common-auth", rule="STACK-2", severity=Severity.MUST,
      title="Debian's common-auth pattern: [success=1 default=ignore], requisite deny, permit",
      requirement="A success jumps over `requisite pam_deny.so` to `required pam_permit.so`; "
      "any failure reaches pam_deny: libpam equals the model and only a grant grants.")
def debian_common_auth(ctx):
    check_shape(ctx, Shape(("auth [success=1 default=ignore] {module}",
                            "auth requisite pam_deny.so",
                            "auth required pam_permit.so")), expect_fail_open=[])


@case("chain.jump.past-the-end", rule="STACK-2", severity=Severity.MUST,
      title="A jump past the end of the stack is an error, and a failure falls through",
      requirement="`required pam_permit.so`, `[success=2 default=ignore] <module>`, then "
      "one `required pam_permit.so`: the grant jumps past the end, an error that turns "
      "the success already recorded into PAM_PERM_DENIED; every failure reaches pam_permit "
      "(fails open); libpam equals the model.")
def past_the_end(ctx):
    check_shape(ctx, Shape(("auth required pam_permit.so",
                            "auth [success=2 default=ignore] {module}",
                            "auth required pam_permit.so")),
                expect_fail_open=["deny", "down", "hung", "garbage"])


@case("chain.jump.records-nothing", rule="STACK-2", severity=Severity.MUST,
      title="A jump records nothing: a grant that only jumps is no grant",
      requirement="`[success=1 default=bad] <module>` then `required pam_deny.so` (jumped "
      "over on success): no module set a result on a grant, so libpam returns "
      "PAM_PERM_DENIED for it; any other reply records the module's own code "
      "(`default=bad`); libpam equals the model.")
def records_nothing(ctx):
    check_shape(ctx, Shape(("auth [success=1 default=bad] {module}",
                            "auth required pam_deny.so")), expect_fail_open=[])


@case("chain.jump.over-substack", rule="STACK-2", severity=Severity.MUST,
      title="A jump counts a whole substack as one line",
      requirement="`[success=1 default=die] <module>`, `substack` of two `pam_deny` lines, "
      "`required pam_permit.so`: the grant skips the whole substack and reaches "
      "pam_permit; libpam equals the model.")
def over_substack(ctx):
    check_shape(ctx, Shape(("auth [success=1 default=die] {module}",
                            "auth substack {dir}/denies",
                            "auth required pam_permit.so"),
                           files={"denies": ("auth required pam_deny.so",
                                             "auth required pam_deny.so")}),
                expect_fail_open=[])
