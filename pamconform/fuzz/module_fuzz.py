"""The fuzzing server for modules: generated replies, timings and disconnects.

Several scenario servers run in the lab container, each behind its own service file; a
round gives each one a generated behaviour and runs one pamdrive attempt per server in
one agent batch. Oracle: PAM_SUCCESS only for a reply of exactly ``0`` or ``0\\n``; no
attempt outlives the hang bound; no crash or ``exit()``; under valgrind (every
``valgrind_every``-th round), no invalid access or uninitialised use.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

from pamconform.drivers.direct import Attempt, DirectDriver
from pamconform.lab.module_target import SERVERS
from pamconform.lab.scenario_control import ScenarioProcess
from pamconform.protocols.redirector.direct_steps import probe_service

WELL_FORMED_GRANTS = (b"0", b"0\n")
SEEDS = [b"0", b"1", b"0\n", b"1\n", b"00", b"PASS\n\0", b"-0", b"0 ", b"\x00"]


@dataclass
class Plan:
    """One generated server behaviour."""

    scenario: str
    args: dict[str, Any]
    reply: bytes | None  # the bytes the module will read, when the scenario replies

    @property
    def may_grant(self) -> bool:
        return self.reply in WELL_FORMED_GRANTS and self.scenario in ("malformed", "delay")

    def describe(self) -> str:
        extra = {k: v for k, v in self.args.items() if k != "reply"}
        shown = "" if self.reply is None else f" reply {self.reply[:40]!r}"
        more = f" ({len(self.reply)} bytes)" if self.reply and len(self.reply) > 40 else ""
        return f"{self.scenario}{shown}{more}{' ' + str(extra) if extra else ''}"


def _mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(5)
        if op == 0 and b:
            b[rng.randrange(len(b))] = rng.randrange(256)
        elif op == 1:
            b.insert(rng.randrange(len(b) + 1), rng.choice(b"0 \n\r\t\x00+-x1"))
        elif op == 2 and b:
            del b[rng.randrange(len(b))]
        elif op == 3:
            b += bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        else:
            b = b * rng.randint(2, 4)
    return bytes(b)


def generate(rng: random.Random) -> Plan:
    """A behaviour: mostly replies (mutated, random, long), sometimes timing or disconnects."""
    roll = rng.random()
    if roll < 0.03:
        name = rng.choice(["reset", "close-before-read", "close-after-request", "silence",
                           "accept-no-read", "silence"])
        return Plan(name, {}, None)
    if roll < 0.05:
        return Plan("two-replies", {"gap": rng.choice([0.0, 0.05])}, None)
    if roll < 0.10:
        reply = rng.choice([b"0", b"1", b"0\n"])
        return Plan("delay", {"seconds": rng.choice([0.05, 0.3]), "reply": reply.hex()}, reply)
    kind = rng.random()
    if kind < 0.55:
        reply = _mutate(rng, rng.choice(SEEDS))
    elif kind < 0.8:
        reply = bytes(rng.randrange(256) for _ in range(rng.randint(0, 24)))
    elif kind < 0.9:
        reply = bytes([rng.choice(b"0123456789 \n")]) * rng.choice([16, 64, 512, 4096, 8192])
    else:
        reply = rng.choice([b"", b"0", b"0\n", b"1", b"2", b"0\r\n", b"0\0", b"0\n\n"])
    return Plan("malformed", {"reply": reply.hex()}, reply)


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
) -> ModuleFuzzResult:
    """Fuzz the module of ``d.target`` until the time or example budget runs out."""
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
            services.append(probe_service(d, socket=sock, name=f"pc-fuzz-{i}"))
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
                plans = [generate(rng) for _ in procs]
                for proc, plan in zip(procs, plans, strict=True):
                    proc.set(plan.scenario, **plan.args)
                # valgrind costs ~0.6 s an attempt: a couple per every K-th round
                memcheck = valgrind_every > 0 and out.rounds % valgrind_every == 0
                requests = [d.request(svc, passwords=["alice-auth-pw"], valgrind=memcheck and i < 2)
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


def _judge(plan: Plan, attempt: Attempt, round_: int) -> ModuleFinding | None:
    status = attempt.status
    if status in ("hung", "crashed", "exited"):
        return ModuleFinding(status, plan.describe(), attempt.raw, round_)
    if status != "ran":
        raise RuntimeError(f"driver error: {str(attempt.raw.get('stderr', ''))[-300:]}")
    vg = attempt.valgrind
    if vg and (vg.get("invalid") or vg.get("uninitialised")):
        return ModuleFinding("memcheck", plan.describe(), attempt.raw, round_)
    if attempt.auth == "PAM_SUCCESS" and not plan.may_grant:
        return ModuleFinding("fail-open", plan.describe(), attempt.raw, round_)
    return None
