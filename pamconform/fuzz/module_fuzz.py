"""The fuzzing server for modules: generated replies, timings and disconnects.

The behaviours come from the module's protocol (its fuzz model's ``module``). Several
scenario servers run in the lab container, each behind its own service file; a
round gives each one a generated behaviour and runs one pamdrive attempt per server in
one agent batch. Oracle: PAM_SUCCESS only for a reply of exactly ``0`` or ``0\\n``; no
attempt outlives the hang bound; no crash or ``exit()``; under valgrind (every
``valgrind_every``-th round), no memory error of any kind but a leak.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pamconform import protocols
from pamconform.drivers.direct import Attempt, DirectDriver
from pamconform.drivers.memcheck import memory_errors
from pamconform.fuzz.engine import model_for
from pamconform.lab.module_target import SERVERS
from pamconform.lab.scenario_control import ScenarioProcess


class ModuleFuzzModel(Protocol):
    """What a protocol gives ``fuzz module`` (``module`` of its fuzz model, an import
    string): generated server behaviours, the service that points the module at a
    server, and the report's cases."""

    @property
    def protocol(self) -> str: ...

    @property
    def password(self) -> str: ...

    #: (case id, rule, title, requirement, the finding kinds it covers)
    @property
    def checks(self) -> Sequence[tuple[str, str, str, str, tuple[str, ...]]]: ...

    def generate(self, rng: random.Random) -> Any:
        """A behaviour: ``scenario`` and ``args`` for the scenario server, ``may_grant``,
        ``describe()``."""
        ...

    def service(self, d: DirectDriver, socket: str, name: str) -> str: ...


def module_model(protocol: str) -> ModuleFuzzModel:
    """The module fuzz model of a protocol (ValueError if it has none)."""
    spec = getattr(model_for(protocol), "module", None)
    if not spec:
        raise ValueError(f"protocol {protocol!r} has no module fuzzing")
    model: ModuleFuzzModel = protocols.load(spec)
    return model


@dataclass
class ModuleFinding:
    kind: str  # fail-open | hung | crashed | exited | memcheck
    plan: str
    attempt: dict[str, Any]
    round: int

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "server": self.plan, "round": self.round,
                "attempt": {k: v for k, v in self.attempt.items() if k != "stderr"}
                | {"stderr": str(self.attempt.get("stderr", ""))[-800:]}}


@dataclass
class ModuleFuzzResult:
    findings: list[ModuleFinding] = field(default_factory=list)
    examples: int = 0
    rounds: int = 0
    valgrind_runs: int = 0
    seconds: float = 0.0
    stopped: str = ""

    def summary(self) -> dict[str, Any]:
        rate = self.examples / self.seconds if self.seconds else 0.0
        return {"examples": self.examples, "rounds": self.rounds,
                "valgrind_runs": self.valgrind_runs, "seconds": round(self.seconds, 2),
                "examples_per_s": round(rate, 1), "findings": len(self.findings),
                "stopped": self.stopped}


def fuzz_module(
    d: DirectDriver,
    *,
    seed: int = 1,
    seconds: float = 30.0,
    max_examples: int = 2000,
    servers: int = 16,
    valgrind_every: int = 4,
    max_findings: int = 20,
    say: Any = None,
    model: ModuleFuzzModel | None = None,
) -> ModuleFuzzResult:
    """Fuzz the module of ``d.target`` until the time or example budget runs out (the
    behaviours come from the module's protocol, ``d.target.spec.protocol``)."""
    model = model if model is not None else module_model(d.target.spec.protocol)
    rng = random.Random(seed)
    box = d.target.box
    procs: list[ScenarioProcess] = []
    services: list[str] = []
    out = ModuleFuzzResult()
    seen: set[tuple[str, str]] = set()
    try:
        box.run(["install", "-d", "-m", "0700", "/run/pc-fuzz"], timeout=5).check()
        for i in range(servers):
            sock = f"/run/pc-fuzz/s{i}"
            procs.append(ScenarioProcess(box.exec_argv(
                ["python3", f"{SERVERS}/scenario_server.py", sock, "--control", "-",
                 "--mode", "0600"], timeout=None)))
            services.append(model.service(d, sock, f"pc-fuzz-{i}"))
        start = time.monotonic()
        try:
            while True:
                if time.monotonic() - start >= seconds:
                    out.stopped = "time"
                    break
                if out.examples >= max_examples:
                    out.stopped = "examples"
                    break
                if len(out.findings) >= max_findings:
                    out.stopped = "findings"
                    break
                plans = [model.generate(rng) for _ in procs]
                for proc, plan in zip(procs, plans, strict=True):
                    proc.set(plan.scenario, **plan.args)
                # valgrind costs ~0.6 s an attempt: a couple per every K-th round
                memcheck = valgrind_every > 0 and out.rounds % valgrind_every == 0
                requests = [d.request(svc, passwords=[model.password], valgrind=memcheck and i < 2)
                            for i, svc in enumerate(services)]
                attempts = d.run(requests, jobs=len(requests))
                out.rounds += 1
                out.examples += len(attempts)
                out.valgrind_runs += min(2, len(attempts)) if memcheck else 0
                for plan, attempt in zip(plans, attempts, strict=True):
                    finding = _judge(plan, attempt, out.rounds)
                    if finding is not None and (finding.kind, finding.plan) not in seen:
                        seen.add((finding.kind, finding.plan))
                        out.findings.append(finding)
                        if say:
                            say(f"finding: {finding.kind}: server {finding.plan} -> "
                                f"{Attempt(finding.attempt).summary()}")
        except KeyboardInterrupt:  # Ctrl-C, SIGTERM: keep the findings so far
            out.stopped = "interrupted"
        out.seconds = time.monotonic() - start
    finally:
        for proc in procs:
            proc.stop()
    return out


def _judge(plan: Any, attempt: Attempt, round_: int) -> ModuleFinding | None:
    status = attempt.status
    if status in ("hung", "crashed", "exited"):
        return ModuleFinding(status, plan.describe(), attempt.raw, round_)
    if status != "ran":
        raise RuntimeError(f"driver error: {str(attempt.raw.get('stderr', ''))[-300:]}")
    vg = attempt.valgrind
    if vg and memory_errors(vg):  # every kind but leaks, as the memcheck cases judge
        return ModuleFinding("memcheck", plan.describe(), attempt.raw, round_)
    if attempt.auth == "PAM_SUCCESS" and not plan.may_grant:
        return ModuleFinding("fail-open", plan.describe(), attempt.raw, round_)
    return None
