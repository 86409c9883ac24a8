"""Join the reports of ``--shard 1/N`` ... ``N/N`` into the report of the whole run.

Each shard report records the run's whole plan (targets in order, each with its case ids
in order) and which part it checked. The merge checks the reports belong together (the
same pamconform version, plan and strictness; every part once), then lays out every
(target, case) result in the plan's order, exactly as the shard reported it: the same
counts, verdicts and evidence as one unsharded run. Times add up the shards' times.
"""

from __future__ import annotations

from typing import Any

from pamconform.core.errors import UsageError
from pamconform.core.shard import MAX_SHARDS
from pamconform.core.verdicts import Verdict
from pamconform.report.timing import merge_timings


class MergeError(UsageError):
    """The reports cannot be merged (exit 2): one line saying why."""


def merge(reports: list[tuple[str, dict[str, Any]]], *, force: bool = False) -> dict[str, Any]:
    """The merged report of ``(where, index.json data)`` shard reports.

    Refuses (``MergeError``) reports of other versions, plans or strictness, a part given
    twice or missing, and a report that is not a shard's; ``force`` merges the reports of
    different versions or plans and missing parts anyway (a pair given twice never).
    """
    if not reports:
        raise MergeError("merge: no report given")
    for where, data in reports:
        if not isinstance(data.get("shard"), dict):
            raise MergeError(f"{where}: not a shard report (made without --shard K/N)")
        _check_shape(where, data)
    first = reports[0][1]
    if not force:
        _check_together(reports)
    plan: dict[str, list[str]] = {}
    for _where, data in reports:
        for name, ids in data["shard"]["plan"].items():
            known = plan.setdefault(name, [])
            known += [i for i in ids if i not in known]
    found: dict[tuple[str, str], dict[str, Any]] = {}
    targets: dict[str, dict[str, Any]] = {}
    timings: dict[str, list[dict[str, Any]]] = {}
    for where, data in reports:
        for target in data["targets"]:
            name = target["name"]
            if name not in plan:
                plan[name] = []
            targets.setdefault(name, target)
            timings.setdefault(name, []).append(target.get("timing") or {})
            for case in target["cases"]:
                key = (name, case["id"])
                if key in found:
                    raise MergeError(f"{where}: case {case['id']} of target {name} is also in "
                                     "another report (the same shard twice?)")
                found[key] = case
                if case["id"] not in plan[name]:
                    plan[name].append(case["id"])
    missing = [(n, i) for n, ids in plan.items() for i in ids if (n, i) not in found]
    if missing and not force:
        name, cid = missing[0]
        raise MergeError(f"merge: {len(missing)} planned case(s) are in no report, e.g. "
                         f"{cid} of {name} (a shard report missing?)")
    out: dict[str, Any] = {
        "pamconform": first.get("pamconform"),
        "started": min(str(d.get("started", "")) for _w, d in reports),
        "duration_s": max(float(d.get("duration_s", 0.0)) for _w, d in reports),
        "strict": first.get("strict", False),
    }
    stopped = [d["interrupted"] for _w, d in reports if d.get("interrupted")]
    if stopped:
        out["interrupted"] = stopped[0]
    out["merged"] = {"shards": [{"report": w, "part": d["shard"].get("part"),
                                 "pamconform": d.get("pamconform"),
                                 "duration_s": d.get("duration_s"),
                                 "known_failing": d["shard"].get("known_failing", [])}
                                for w, d in reports]}
    out["targets"] = []
    for name, ids in plan.items():
        if name not in targets:
            continue
        target = {k: v for k, v in targets[name].items()
                  if k not in ("summary", "cases", "timing")}
        cases = [found[(name, i)] for i in ids if (name, i) in found]
        target["summary"] = _summary(cases)
        target["cases"] = cases
        target["timing"] = merge_timings(timings[name])
        out["targets"].append(target)
    return out


_VERDICTS = frozenset(str(v) for v in Verdict)
_SIGNALS = frozenset({"SIGINT", "SIGTERM"})


def _check_shape(where: str, data: dict[str, Any]) -> None:
    """What the merge reads of a shard report is there and of the right type."""
    def bad(key: str, wanted: str) -> MergeError:
        return MergeError(f"{where}: {key}: expected {wanted} (a damaged shard report?)")

    def strings(value: Any) -> bool:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)

    shard = data["shard"]
    plan = shard.get("plan")
    if not isinstance(plan, dict) or not all(strings(ids) for ids in plan.values()):
        raise bad("shard.plan", "a table of target names to lists of case ids")
    for key in ("index", "count"):
        if not isinstance(shard.get(key), int) or isinstance(shard[key], bool) or \
                not 1 <= shard[key] <= MAX_SHARDS:
            raise bad(f"shard.{key}", f"a whole number from 1 to {MAX_SHARDS}")
    if shard["index"] > shard["count"]:
        raise bad("shard.index", "at most shard.count")
    known = shard.get("known_failing", [])
    if not isinstance(known, list) or not all(strings(k) and len(k) == 2 for k in known):
        raise bad("shard.known_failing", "a list of [target, case id] pairs")
    if data.get("interrupted") not in (None, *_SIGNALS):
        raise bad("interrupted", "SIGINT or SIGTERM")
    targets = data.get("targets")
    if not isinstance(targets, list):
        raise bad("targets", "a list")
    for target in targets:
        if not isinstance(target, dict) or not all(
                isinstance(target.get(k), str) for k in ("name", "kind", "protocol")):
            raise bad("targets", "tables with a name, kind and protocol")
        cases = target.get("cases")
        if not isinstance(cases, list) or not all(
                isinstance(c, dict) and isinstance(c.get("id"), str)
                and c.get("verdict") in _VERDICTS for c in cases):
            raise bad(f"targets.{target['name']}.cases", "cases with an id and a verdict")
        timing = target.get("timing", {})
        suites = timing.get("suites", {}) if isinstance(timing, dict) else None
        if not isinstance(suites, dict) or not all(
                _number(v) for t in (timing, *suites.values()) if isinstance(t, dict)
                for k, v in t.items() if k != "suites") or not all(
                isinstance(t, dict) for t in suites.values()):
            raise bad(f"targets.{target['name']}.timing", "a table of seconds")
    if not _number(data.get("duration_s", 0.0)):
        raise bad("duration_s", "a number")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _summary(cases: list[dict[str, Any]]) -> dict[str, int]:
    """Counts by verdict, in the order of an unsharded run's report."""
    counts = {str(v): sum(c["verdict"] == str(v) for c in cases) for v in Verdict}
    return {v: n for v, n in counts.items() if n}


def _check_together(reports: list[tuple[str, dict[str, Any]]]) -> None:
    first_where, first = reports[0]
    head = first["shard"]
    for where, data in reports[1:]:
        if data.get("pamconform") != first.get("pamconform"):
            raise MergeError(f"{where}: made by pamconform {data.get('pamconform')}, "
                             f"{first_where} by {first.get('pamconform')} (--force merges "
                             "them anyway)")
        shard = data["shard"]
        if shard.get("plan_sha256") != head.get("plan_sha256") or \
                shard.get("count") != head.get("count"):
            raise MergeError(f"{where}: a shard of another run (other targets, cases or "
                             f"shard count than {first_where}; --force merges them anyway)")
        if shard.get("split_sha256") != head.get("split_sha256"):
            raise MergeError(f"{where}: the cases were split among the shards otherwise than "
                             f"in {first_where} (another --shard-weights, or --no-lab on one "
                             "of them); --force merges them anyway")
        if data.get("strict") != first.get("strict"):
            raise MergeError(f"{where}: strict is {data.get('strict')}, {first_where}: "
                             f"{first.get('strict')}")
    seen: dict[int, str] = {}
    for where, data in reports:
        index = data["shard"].get("index")
        if index in seen:
            raise MergeError(f"{where}: shard {data['shard'].get('part')} again (also "
                             f"{seen[index]})")
        seen[index] = where
    count = int(head.get("count", len(reports)))
    absent = [str(i) for i in range(1, count + 1) if i not in seen]
    if absent:
        raise MergeError(f"merge: shard(s) {', '.join(absent)} of {count} missing "
                         "(--force merges the parts given)")
