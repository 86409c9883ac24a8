"""What a run cost: wall time per target and per suite.

A target's wall time is measured by the command around everything the target took (its
lab, its build, its cases); without it, the span of its cases stands in. A suite's wall
time is the span from its first case's start to its last case's end, so cases that ran
side by side count once; ``cases_s`` adds up the cases' own durations.
"""

from __future__ import annotations

from typing import Any

from pamconform.core.runner import TargetResult


def target_timing(target: TargetResult, wall_s: float | None = None) -> dict[str, Any]:
    """``{"wall_s", "cases_s", "suites": {suite: {"cases", "wall_s", "cases_s"}}}``."""
    by_suite: dict[str, list[Any]] = {}
    for r in target.results:
        by_suite.setdefault(suite_of(r.case.suite), []).append(r)
    suites = {name: {"cases": len(rs), "wall_s": round(_span(rs), 3),
                     "cases_s": round(sum(r.duration_s for r in rs), 3)}
              for name, rs in by_suite.items()}
    cases_s = sum(r.duration_s for r in target.results)
    wall = wall_s if wall_s is not None else _span(target.results)
    return {"wall_s": round(wall, 3), "cases_s": round(cases_s, 3), "suites": suites}


def suite_of(name: str) -> str:
    """The suite folder of a case's suite (``SUITE.MODULE``: the ``SUITE``)."""
    return name.split(".", 1)[0]


def _span(results: list[Any]) -> float:
    """From the first start to the last end of the cases that ran (the sum when no start
    time is known; cases a stop left NOT-RUN have none)."""
    timed = [r for r in results if getattr(r, "started", 0.0)]
    if not timed:
        return sum(r.duration_s for r in results)
    return max(r.started + r.duration_s for r in timed) - min(r.started for r in timed)


def merge_timings(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One target's timing from the shards that ran parts of it: times add up."""
    out: dict[str, Any] = {"wall_s": 0.0, "cases_s": 0.0, "suites": {}}
    for part in parts:
        out["wall_s"] = round(out["wall_s"] + part.get("wall_s", 0.0), 3)
        out["cases_s"] = round(out["cases_s"] + part.get("cases_s", 0.0), 3)
        for name, suite in part.get("suites", {}).items():
            into = out["suites"].setdefault(name, {"cases": 0, "wall_s": 0.0, "cases_s": 0.0})
            for key in into:
                into[key] = round(into[key] + suite.get(key, 0), 3)
    return out
