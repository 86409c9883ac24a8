"""``pamconform bench SOCKET``: auth round-trips per second and latency percentiles.

Exit codes: 0 measured, 2 bad usage or input (no socket, nothing listening, ...).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from pamconform import loadgen
from pamconform.console import Console
from pamconform.errors import UsageError


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "bench", help="auth round-trips per second and latency percentiles of a server")
    p.add_argument("socket", type=Path, help="the server's UNIX socket")
    p.add_argument("--protocol", choices=["redirector"], default="redirector")
    p.add_argument("--credentials", action="append", default=[], metavar="USER:PASSWORD",
                   help="a valid login (repeatable; at least one; wrong passwords are made "
                   "from it)")
    p.add_argument("--concurrency", type=int, default=4, metavar="N",
                   help="round-trips kept in flight (default 4)")
    p.add_argument("--seconds", type=float, default=10.0, metavar="N",
                   help="stop starting round-trips after this long (default 10)")
    p.add_argument("--count", type=int, metavar="N",
                   help="... or after this many, whichever comes first")
    p.add_argument("--mix", choices=loadgen.MIXES, default="mixed",
                   help="valid logins, wrong passwords, or both alternating (default mixed)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="generator processes (default: one per two CPUs, at most --concurrency)")
    p.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS",
                   help="give up on a round-trip after this long (default 5)")
    p.add_argument("--half-close", action="store_true",
                   help="shut down the write side after the request (the original module "
                   "does not; servers that wait for stray bytes answer sooner)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.set_defaults(func=cmd_bench)


def cmd_bench(args: argparse.Namespace, console: Console) -> int:
    from pamconform.cli import parse_credentials, preflight

    credentials = parse_credentials(args.credentials)
    if not credentials:
        raise UsageError("bench: give at least one valid login with --credentials USER:PASSWORD")
    if args.concurrency < 1 or (args.workers is not None and args.workers < 1):
        raise UsageError("--concurrency and --workers must be at least 1")
    if args.seconds <= 0 or args.timeout <= 0 or (args.count is not None and args.count < 1):
        raise UsageError("--seconds and --timeout must be positive, --count at least 1")
    preflight(args.socket, args.timeout)
    requests = loadgen.plan(credentials, args.mix)
    if not args.json:
        limit = f"up to {args.seconds:g} s" + (f" or {args.count} round-trips"
                                               if args.count else "")
        console.line(f"pamconform bench: {args.socket} ({args.protocol}), concurrency "
                     f"{args.concurrency}, mix {args.mix}, {limit}")
    result = loadgen.run(args.socket, requests, concurrency=args.concurrency,
                         seconds=args.seconds, count=args.count, workers=args.workers,
                         timeout=args.timeout, half_close=args.half_close, mix=args.mix)
    if args.json:
        console.line(json.dumps(result.summary(), indent=2))
        return 0
    console.line(f"generator: {result.workers} worker process(es)")
    for line in result.lines():
        console.line(line)
    if result.unexpected:
        console.line(f"warning: {result.unexpected} replies contradicted the credentials "
                     "(a grant for a wrong password, or a denial for a valid one)")
    return 0
