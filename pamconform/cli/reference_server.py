"""``pamconform reference-server ...``: the bundled reference server's own command line."""

from __future__ import annotations

import argparse
from typing import Any

from pamconform.lab.localserver import reference_server_script


def register(sub: Any) -> None:
    ref = sub.add_parser("reference-server", add_help=False,
                         help="the bundled reference redirector server (serve, adduser)")
    ref.add_argument("args", nargs=argparse.REMAINDER)
    ref.set_defaults(func=lambda args, console: run_reference_server(args.args))


def run_reference_server(argv: list[str]) -> int:
    """Run the bundled server's ``main`` on ``argv``, unparsed by ours (so its --help works)."""
    import runpy

    module = runpy.run_path(str(reference_server_script()), run_name="pamconform_reference")
    return int(module["main"](argv))
