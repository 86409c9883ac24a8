"""``pamconform bench SOCKET``: auth round-trips per second and latency percentiles.

While it runs, a progress line every :data:`PROGRESS_SECONDS` (``--quiet``: none), on
stdout, or on stderr with ``--json`` so that stdout holds one JSON document. Ctrl-C or
SIGTERM stops the generator; the figures of the round trips that finished are printed
all the same (``--json``: with ``"interrupted": "SIGINT"``), then it exits 130 / 143.

Exit codes: 0 measured, 1 nothing measured (no round trip completed, or every reply
contradicted the logins), 2 bad usage or input (no socket, nothing listening, a login the
server refuses, ...), 130 / 143 stopped by Ctrl-C / SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pamconform.cli.console import Console
from pamconform.core import credentials, interrupts
from pamconform.core.errors import UsageError
from pamconform.core.options import COUNT, REPLY_SECONDS, SECONDS, Count
from pamconform.core.preflight import check_socket
from pamconform.protocols.redirector import loadgen
from pamconform.protocols.redirector.login_check import check_logins
from pamconform.protocols.redirector.profile import PROTOCOL as BENCHED

#: More round trips in flight than this is a typo (each holds a socket).
MAX_CONCURRENCY = 10_000
MAX_WORKERS = 256
#: Seconds between two progress lines while the generator runs.
PROGRESS_SECONDS = 2.0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "bench", help="auth round-trips per second and latency percentiles of a server")
    p.add_argument("socket", type=Path, help="the server's UNIX socket")
    # the load generator speaks the one protocol it was written for
    p.add_argument("--protocol", choices=[BENCHED.name], default=BENCHED.name)
    credentials.add_options(p)  # wrong passwords are made from these logins
    p.add_argument("--concurrency", type=Count(maximum=MAX_CONCURRENCY), default=4, metavar="N",
                   help="round-trips kept in flight (default 4)")
    p.add_argument("--seconds", type=SECONDS, default=10.0, metavar="N",
                   help="stop starting round-trips after this long (default 10)")
    p.add_argument("--count", type=COUNT, metavar="N",
                   help="... or after this many, whichever comes first")
    p.add_argument("--mix", choices=loadgen.MIXES, default="mixed",
                   help="valid logins, wrong passwords, or both alternating (default mixed)")
    p.add_argument("--workers", type=Count(maximum=MAX_WORKERS), metavar="N",
                   help="generator processes (default: one per two CPUs, at most --concurrency)")
    p.add_argument("--timeout", type=REPLY_SECONDS, default=5.0, metavar="SECONDS",
                   help="give up on a round-trip after this long (default 5)")
    p.add_argument("--half-close", action="store_true",
                   help="shut down the write side after the request (the original module "
                   "does not; servers that wait for stray bytes answer sooner)")
    p.add_argument("--json", action="store_true",
                   help="print the figures as JSON (progress lines go to stderr)")
    p.add_argument("--quiet", action="store_true",
                   help=f"no progress lines (one every {PROGRESS_SECONDS:g} s otherwise)")
    p.set_defaults(func=cmd_bench)


def cmd_bench(args: argparse.Namespace, console: Console) -> int:
    logins = credentials.gather(args)
    if not logins:
        raise UsageError(f"bench: {credentials.NEED_ONE}")
    check_socket(args.socket, args.timeout)
    check_logins(args.socket, logins, args.timeout)
    requests = loadgen.plan(logins, args.mix)
    if not args.json:
        limit = f"up to {args.seconds:g} s" + (f" or {args.count} round-trips"
                                               if args.count else "")
        console.line(f"pamconform bench: {args.socket} ({args.protocol}), concurrency "
                     f"{args.concurrency}, mix {args.mix}, {limit}")
    shown = Console(sys.stderr) if args.json else console  # stdout: the JSON alone

    def progress(figures: loadgen.Progress) -> None:
        shown.line(f"  {figures.line()}")

    stop: interrupts.Interrupted | None = None
    try:
        result = loadgen.run(args.socket, requests, concurrency=args.concurrency,
                             seconds=args.seconds, count=args.count, workers=args.workers,
                             timeout=args.timeout, half_close=args.half_close, mix=args.mix,
                             on_progress=None if args.quiet else progress,
                             progress_every=PROGRESS_SECONDS)
    except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM: the figures of what finished
        stop = interrupts.as_interrupted(exc)
        if not isinstance(stop.partial, loadgen.BenchResult):
            raise
        result = stop.partial
    with interrupts.shielded():  # a signal now waits until the figures are out
        _print(result, stop, args, console)
    return stop.exit_code if stop is not None else _verdict(result)


def _print(result: loadgen.BenchResult, stop: interrupts.Interrupted | None,
           args: argparse.Namespace, console: Console) -> None:
    stopped = (f"stopped by {stop.signame} after {result.elapsed_s:.1f} s: the figures are "
               f"of the {result.completed:,} round trips that finished") if stop else ""
    if args.json:
        console.line(json.dumps(result.summary(), indent=2))
        if stop is not None:
            print(f"pamconform bench: {stopped}", file=sys.stderr, flush=True)
        return
    console.line(f"generator: {result.workers} worker process(es)")
    if stop is not None:
        console.line(stopped)
    for line in result.lines():
        console.line(line)
    if result.unexpected:
        console.line(f"warning: {result.unexpected} replies contradicted the credentials "
                     "(a grant for a wrong password, or a denial for a valid one)")


def _verdict(result: loadgen.BenchResult) -> int:
    """1 (one line on stderr) when the figures measure nothing: no round trip got a
    reply, or every reply contradicted the logins."""
    why = None
    if result.completed == 0:
        first = f" (first error: {result.first_error})" if result.first_error else ""
        why = f"no round trip completed{first}"
    elif result.unexpected >= result.completed:
        why = (f"every one of the {result.completed} replies contradicted the logins (a "
               "grant for a wrong password, or a denial for a valid one)")
    if why is None:
        return 0
    print(f"pamconform bench: {why}", file=sys.stderr)
    return 1
