"""R-M1 under the chain suite: the socket module's own return code in each server state.

The stack cases feed these codes to the model; here they are pinned to what a
fail-closed module returns (R-M1 in docs/protocols.md): only the grant state gives PAM_SUCCESS.
"""

from pamconform.core.outcome import Fail
from pamconform.core.registry import case_factory
from pamconform.core.verdicts import Severity
from pamconform.lab.stack_cases import Shape, run_shape
from pamconform.model import codes
from pamconform.model.modules import STATE_CODES, STATES
from pamconform.model.trace import pamdrive_results

case = case_factory(protocol="redirector", kind="stack")


@case("chain.module-codes", rule="R-M1", severity=Severity.MUST,
      title="The socket module's code in each server state",
      requirement="`auth [default=ok] <module>` returns the module's own code: PAM_SUCCESS "
      "for a grant, PAM_AUTH_ERR for a deny or garbage, PAM_AUTHINFO_UNAVAIL when the "
      "server is down or hung.")
def module_codes(ctx):
    result = run_shape(ctx.target, Shape(("auth [default=ok] {module}",),
                                         steps=("authenticate",)))
    got = {}
    for state in STATES:
        steps = pamdrive_results(result.real[state].get("result"))[1]
        got[state] = steps[0][1] if steps else result.real[state].get("status")
    want = {state: codes.name(STATE_CODES[state]) for state in STATES}
    ctx.extra["codes"] = got
    if got != want:
        raise Fail(f"codes {want}", f"{got}")
