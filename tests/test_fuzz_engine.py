"""The one fuzz engine knows no protocol: a toy FuzzModel of a few lines runs on it.

The toy "server" answers n with n % 7; the oracle calls a 0 a ``seven`` finding (MUST).
Items are numbers (a pure function of seed and i), findings shrink towards the smallest
multiple of 7, and the report target grades the toy's cases like any protocol's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pamconform.core.verdicts import Verdict
from pamconform.fuzz.engine import FuzzConfig, Fuzzer, fuzzed_protocols, model_for
from pamconform.fuzz.interface import FuzzModel, Kind, Replayed, StopFuzzing, Violation
from pamconform.fuzz.results import target_result
from pamconform.fuzz.shrink import Budget, descend


@dataclass(frozen=True)
class Num:
    n: int
    generator: str = "toy.count"

    def key(self) -> bytes:
        return str(self.n).encode()


@dataclass
class ToyFinding:
    kind: str
    item: Num
    expected: str
    observed: str
    seed: int
    iteration: int
    found_after_s: float = 0.0
    shrink: dict[str, Any] = field(default_factory=dict)
    protocol: str = "toy"
    case_id = property(lambda self: TOY.kinds[self.kind].case_id)
    rule = property(lambda self: TOY.kinds[self.kind].rule)
    generator = property(lambda self: self.item.generator)

    def reproducer(self) -> str:
        return str(self.item.n)

    def short_hash(self) -> str:
        return f"{self.item.n:010x}"

    def file_name(self) -> str:
        return f"{self.kind}-{self.short_hash()}.json"

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "n": self.item.n}

    def save(self, directory: Path) -> Path:
        raise NotImplementedError


class ToySession:
    def __init__(self, cfg: FuzzConfig) -> None:
        self.cfg, self.sent = cfg, 0

    def generate(self, i: int) -> Num:
        return Num(self.cfg.seed * 1000 + 3 * i + 2)

    def send(self, i: int, item: Num) -> list[tuple[Num, int]]:
        if self.cfg.target == "stop" and i == 2:
            raise StopFuzzing("toy-broke", "the toy server broke")
        self.sent += 1
        return [(item, item.n % 7)]

    def ended(self, wait: bool) -> list[tuple[int, Num, int]]:
        return []

    def judge(self, item: Num, reply: int) -> Violation | None:
        return Violation("seven", "a non-zero reply", "0") if reply == 0 else None

    def gone(self, *_: Any) -> None:
        return None

    def finding(self, i: int, item: Num, attempt: Num, reply: int, v: Violation,
                found: float) -> ToyFinding:
        return ToyFinding(v.kind, attempt, v.expected, v.observed, self.cfg.seed, i, found)

    def memory_finding(self, *_: Any) -> None:
        return None

    def example(self, item: Num, reply: int) -> dict[str, Any]:
        return {"generator": item.generator, "n": item.n}

    def can_shrink(self, finding: ToyFinding) -> bool:
        return True

    def shrink(self, finding: ToyFinding, replays: int, seconds: float) -> None:
        small, _, info = descend(finding.item, lambda c: [Num(c.n - 7)] if c.n > 7 else [],
                                 lambda c: c if c.n % 7 == 0 else None,
                                 Budget(replays, seconds), lambda c: c.n)
        finding.item, finding.shrink = small, {"reproduced": True, **info}

    def stats(self, fuzz_seconds: float) -> dict[str, Any]:
        return {"toy_sent": self.sent}

    def close(self) -> None:
        pass


class ToyModel:
    protocol = "toy"
    kinds: ClassVar[dict[str, Kind]] = {
        "seven": Kind("fuzz.toy.never-seven", "TOY-1", "MUST", "Never 0", "n % 7", shrink=True),
        "eight": Kind("fuzz.toy.never-eight", "TOY-2", "SHOULD", "Never 8", "-")}
    regressions = None
    options = "tests.test_fuzz_engine"
    module = None

    def open(self, cfg: FuzzConfig) -> ToySession:
        return ToySession(cfg)

    def load_finding(self, data: Any) -> ToyFinding:
        return ToyFinding(data["kind"], Num(int(data["n"])), "", "", 0, 0)

    def replay(self, finding: ToyFinding, cfg: FuzzConfig) -> Replayed:
        return Replayed(finding.item.n % 7 == 0, str(finding.item.n % 7))

    def run_note(self, result: Any) -> str:
        return f"{result.execs} numbers"


TOY: FuzzModel = ToyModel()


def _run(target: str = "", **knobs: Any) -> Any:
    cfg = FuzzConfig("toy", target, **{"seed": 1, "seconds": 30, "max_examples": 40, **knobs})
    return Fuzzer(cfg, model=TOY).run()


def test_a_toy_model_runs_on_the_engine() -> None:
    result = _run(max_findings=1)
    assert result.stopped == "findings" and result.items == 3  # 1002, 1005, 1008 = 7 * 144
    (finding,) = result.findings
    assert finding.kind == "seven" and finding.iteration == 2
    assert finding.item.n == 7 and finding.shrink["reproduced"] is True  # shrunk
    assert result.stats == {"toy_sent": 3} and result.generators == {"toy": 3}
    assert result.digest == _run(max_findings=1).digest
    assert result.digest != _run(max_findings=1, max_examples=2).digest
    target = target_result("toy", result, model=TOY)
    verdicts = {r.case.id: r.verdict for r in target.results}
    assert verdicts == {"fuzz.toy.never-seven": Verdict.FAIL,
                        "fuzz.toy.never-eight": Verdict.PASS}
    assert target.protocol == "toy" and target.info["fuzz"]["toy_sent"] == 3


def test_the_whole_budget_counts_every_violation_and_keeps_examples() -> None:
    result = _run(shrink=False)
    assert result.stopped == "count" and result.execs == 40
    assert result.violations["seven"] == 6  # 1008, 1029, ... 1113
    assert len(result.findings) == 1 and result.findings[0].item.n == 1008  # as found
    assert len(result.examples["seven"]) == 5


def test_a_model_that_cannot_go_on_stops_the_run_as_an_error() -> None:
    result = _run("stop")
    assert result.stopped == "toy-broke" and result.error == "the toy server broke"
    assert result.items == 2 and not result.findings
    target = target_result("toy", result, model=TOY)
    assert {r.verdict for r in target.results} == {Verdict.ERROR}


def test_registered_protocols_have_fuzz_models() -> None:
    names = fuzzed_protocols()
    assert len(names) >= 2
    for name in names:
        model = model_for(name)
        assert model.protocol == name and model.kinds
