"""``pamconform merge DIR... --report OUT``: one report from the reports of ``--shard`` runs.

Exit codes as a run's: 0 no case FAILed, 1 a case FAILed, 3 a case is ERROR; 2 for
reports that cannot be merged (other versions, plans, a part missing or twice).
"""

from __future__ import annotations

import argparse
import signal
from pathlib import Path
from typing import Any

from pamconform.cli.console import Console
from pamconform.core.errors import UsageError
from pamconform.core.options import directory
from pamconform.core.preflight import check_report_dir
from pamconform.core.redaction import Verbatim
from pamconform.core.runner import verdicts_exit_code
from pamconform.core.verdicts import Verdict
from pamconform.report import point_latest, write_data
from pamconform.report.baseline import load_report
from pamconform.report.merge import merge


def register(sub: Any) -> None:
    p = sub.add_parser("merge", help="join the reports of --shard K/N runs into one report")
    p.add_argument("reports", nargs="+", type=Path, metavar="DIR",
                   help="the shard reports (directories holding index.json, or the files)")
    p.add_argument("--report", type=directory, required=True, metavar="OUT",
                   help="where the merged report goes (index.json, junit.xml, index.html)")
    p.add_argument("--force", action="store_true",
                   help="merge reports of other pamconform versions or plans, or with a "
                   "shard missing (a case in two reports is never merged)")
    p.set_defaults(func=cmd_merge)


def cmd_merge(args: argparse.Namespace, console: Console) -> int:
    out = args.report.resolve()
    for path in args.reports:  # the merged report would overwrite a shard it reads
        if (path.parent if path.name == "index.json" else path).resolve() == out:
            raise UsageError(f"merge: --report {args.report} is one of the shard reports; "
                             "give a new directory")
    if args.report.name == "latest" and args.report.parent.name == "reports":
        raise UsageError(f"merge: --report {args.report} is the link to the newest report; "
                         "give a new directory")
    check_report_dir(args.report)
    reports = [(str(path), load_report(path)) for path in args.reports]
    data = merge(reports, force=args.force)
    try:
        write_data(data, args.report)  # renders every file before it writes one
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UsageError(f"merge: the shard reports cannot be rendered ({type(exc).__name__}: "
                         f"{exc}): a damaged report?") from None
    if args.report.parent.name == "reports":
        point_latest(args.report)
    cases = [c for t in data["targets"] for c in t["cases"]]
    counts = {str(v): sum(c["verdict"] == str(v) for c in cases) for v in Verdict}
    console.line(f"merged {len(reports)} reports: {len(data['targets'])} targets, "
                 f"{len(cases)} cases (" + ", ".join(f"{n} {v}" for v, n in counts.items()
                                                     if n) + ")")
    for target in data["targets"]:
        timing = target["timing"]
        console.line(f"  {target['name']}: {timing['wall_s']:.1f} s over the shards")
    console.line("report: ", Verbatim(f"{args.report}/index.html"), " (index.json, junit.xml)")
    if data.get("interrupted"):  # a shard did not finish: no verdict on the whole
        console.line(f"a shard was stopped by {data['interrupted']}: its cases are "
                     "INTERRUPTED or NOT-RUN")
        return 128 + signal.Signals[data["interrupted"]].value
    known = {tuple(k) for shard in data["merged"]["shards"] for k in shard["known_failing"]}
    for name, cid in sorted(known):
        console.line(f"known finding, not counted: {name} {cid}")
    return verdicts_exit_code(Verdict(c["verdict"]) for t in data["targets"] for c in t["cases"]
                              if not (c["verdict"] == str(Verdict.FAIL)
                                      and (t["name"], c["id"]) in known))
