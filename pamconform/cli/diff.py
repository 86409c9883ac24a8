"""``pamconform diff OLD NEW``: what changed between two reports; ``--baseline`` for runs.

Exit codes: 0 no regression, 1 a case newly FAILs or ERRORs, 2 unreadable or malformed
input.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from pamconform.cli.console import Console
from pamconform.report import baseline

#: Commands that write a report and so accept ``--baseline``.
RUN_COMMANDS = ("server", "module", "run")


def _ratio(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 1 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a finite number greater than 1: {text!r}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a finite number, not negative: {text!r}")
    return value


def _baseline_file(text: str) -> Path:
    """Check the baseline before the run starts, so a typo costs no run."""
    path = Path(text)
    try:
        baseline.load_report(path)
    except baseline.BaselineError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return path


def register(subparsers: Any) -> None:
    """Add ``diff``, and ``--baseline`` to the commands that write a report."""
    p = subparsers.add_parser(
        "diff", help="compare two reports (index.json): newly failing, newly passing, "
        "changed verdicts, added/removed cases, timing changes; exit 1 on a regression; when the "
        "new report proves nothing, 130/143 (its run was stopped) or 2 (no finished verdict "
        "to compare)")
    p.add_argument("old", type=Path, metavar="OLD", help="the earlier index.json (or its dir)")
    p.add_argument("new", type=Path, metavar="NEW", help="the later index.json (or its dir)")
    p.add_argument("--time-threshold", type=_ratio, default=baseline.DEFAULT_TIME_RATIO,
                   metavar="RATIO", help="report a case whose duration changed by more than "
                   f"this factor (default {baseline.DEFAULT_TIME_RATIO:g})")
    p.add_argument("--time-min", type=_seconds, default=baseline.DEFAULT_TIME_MIN_S,
                   metavar="SECONDS", help="... when both durations exceed this "
                   f"(default {baseline.DEFAULT_TIME_MIN_S:g})")
    p.set_defaults(func=cmd_diff)
    for name in RUN_COMMANDS:
        parser = subparsers.choices.get(name)
        if parser is not None:
            parser.add_argument(
                "--baseline", type=_baseline_file, metavar="OLD/index.json",
                help="compare with an earlier report; exit 1 if a case newly fails")


def cmd_diff(args: argparse.Namespace, console: Console) -> int:
    old = baseline.load_report(args.old)  # BaselineError is a UsageError: exit 2
    new = baseline.load_report(args.new)
    diff = baseline.compare(old, new, time_ratio=args.time_threshold,
                            time_min_s=args.time_min)
    for line in baseline.diff_lines(diff, old, new, old_label=f"old {args.old}",
                                    new_label=f"new {args.new}"):
        console.line(line)
    return baseline.exit_code(diff)
