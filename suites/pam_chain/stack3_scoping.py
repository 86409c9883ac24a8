"""STACK-3: include, substack, reset and the ``other`` fallback (rules: ``stack1_control_flags``).
"""

from pamconform.core.registry import case_factory
from pamconform.core.verdicts import Severity
from pamconform.lab.stack_cases import Shape, check_shape

case = case_factory(protocol="redirector", kind="stack")

SUFFICIENT_FILE = {"sufficient": ("auth sufficient {module}",)}


@case("chain.include.done-ends-the-stack", rule="STACK-3", severity=Severity.MUST,
      title="`include` splices lines in: sufficient in an included file ends the whole stack",
      requirement="`include` of a file holding `sufficient <module>`, then `required "
      "pam_deny.so`: a grant ends the whole stack (PAM_SUCCESS); libpam equals the model.")
def include_done(ctx):
    check_shape(ctx, Shape(("auth include {dir}/sufficient", "auth required pam_deny.so"),
                           files=SUFFICIENT_FILE), expect_fail_open=[])


@case("chain.substack.done-is-scoped", rule="STACK-3", severity=Severity.MUST,
      title="`substack` scopes done: sufficient in a substack ends only the substack",
      requirement="The same two lines with `substack`: a grant ends the substack only, "
      "pam_deny still runs and fails the stack in every state; libpam equals the model.")
def substack_done(ctx):
    check_shape(ctx, Shape(("auth substack {dir}/sufficient", "auth required pam_deny.so"),
                           files=SUFFICIENT_FILE), expect_fail_open=[])


@case("chain.substack.die-is-scoped", rule="STACK-3", severity=Severity.MUST,
      title="`substack` scopes die, but its verdict stays",
      requirement="`substack` of `requisite <module>` + `required pam_permit.so`, then "
      "`sufficient pam_permit.so` and `[default=1] pam_permit.so`: a failure dies out of "
      "the substack only, so the stack goes on; the negative verdict it left stops "
      "pam_permit from granting, and the last line's jump past the end makes it "
      "PAM_PERM_DENIED (a die that ended the whole stack would return the module's own "
      "code); libpam equals the model.")
def substack_die(ctx):
    check_shape(ctx, Shape(("auth substack {dir}/requisite", "auth sufficient pam_permit.so",
                            "auth [default=1] pam_permit.so"),
                           files={"requisite": ("auth requisite {module}",
                                                "auth required pam_permit.so")}),
                expect_fail_open=[])


@case("chain.reset.undoes-the-verdict", rule="STACK-3", severity=Severity.MUST,
      title="`reset` forgets the verdict so far",
      requirement="`required pam_deny.so`, `[success=ok default=reset] <module>`, "
      "`optional pam_permit.so`: a failure resets to undecided, forgetting pam_deny's "
      "failure, and the optional pam_permit then grants (fails open); a grant keeps "
      "pam_deny's PAM_AUTH_ERR; libpam equals the model.")
def reset(ctx):
    check_shape(ctx, Shape(("auth required pam_deny.so",
                            "auth [success=ok default=reset] {module}",
                            "auth optional pam_permit.so")),
                expect_fail_open=["deny", "down", "hung", "garbage"])


@case("chain.other.fallback", rule="STACK-3", severity=Severity.MUST,
      title="A service without auth lines uses other's auth chain",
      requirement="The service has only an account line; `other` has `auth required "
      "<module>`: authenticate runs other's chain; libpam equals the model.")
def other_fallback(ctx):
    check_shape(ctx, Shape(("account required pam_permit.so",),
                           other=("auth required {module}",)), expect_fail_open=[])
