"""``pamconform audit`` in the lab: the plan of :mod:`pamconform.model.audit` run on libpam.

Per server state, one agent batch runs the stack's primitive and every other module
line alone (``[default=ok]``, to learn its code); :func:`pamconform.model.audit.judge`
puts libpam's result beside the model's.
"""

from __future__ import annotations

from pamconform.lab.images import Progress, quiet
from pamconform.lab.stack import STACK_ROOT, StackLab, module_args
from pamconform.model.audit import (
    AuditResult,
    Plan,
    StateResult,
    apply_stand_ins,
    code_of,
    judge,
    line_key,
    summary_line,
)
from pamconform.model.modules import STATES


def prepare(p: Plan, lab: StackLab) -> None:
    """Empty the container's ``/etc/pam.d`` (pam.d form) and stand in for missing modules."""
    if not p.single_file:
        lab.sh("find /etc/pam.d -mindepth 1 -delete")
    apply_stand_ins(p, lab.installed_modules())


def run(p: Plan, lab: StackLab, *, say: Progress = quiet) -> AuditResult:
    """Every server state in the lab and in the model."""
    probe_codes: dict[str, int] = {}
    out: list[StateResult] = []
    directory = f"{STACK_ROOT}/audit"
    for state in STATES:
        args = module_args(state)
        files = p.files_for(args)
        probe_files = {}
        requests = []
        probes = p.probes if not probe_codes else []
        for k, h in enumerate([p.socket, *probes]):
            probe_files[f"{directory}/probe{k}"] = p.probe_line(files, h, args) + "\n"
            requests.append(lab.request(f"probe{k}", confdir=directory, steps=(p.primitive,),
                                        rid=f"probe{k}"))
        requests.append(lab.request(p.service, steps=(p.primitive,), rid="stack"))
        lab.put_files({**files, **probe_files})
        results = {r["id"]: r for r in lab.run(requests)}
        for k, h in enumerate(probes, start=1):
            probe_codes[line_key(h)] = code_of(results[f"probe{k}"])
        result = judge(p, files, state, code_of(results["probe0"]), results["stack"],
                       probe_codes)
        out.append(result)
        say(summary_line(result))
    return AuditResult(p, out)
