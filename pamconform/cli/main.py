"""The ``pamconform`` command: the parser of every subcommand, dispatch and exit codes.

Exit codes: 0 no case FAILed, 1 a case FAILed, 2 bad usage or input, 3 harness error,
128 + the signal for a run stopped by Ctrl-C or SIGTERM (141 when the reader of our
output went away). Each subcommand lives in its own module with ``register(subparsers)``,
which adds its parser and sets ``func(args, console) -> int`` as the parser's default.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from pamconform import __version__
from pamconform.cli.common import Parser
from pamconform.cli.console import Console
from pamconform.cli.reference_server import run_reference_server
from pamconform.core import interrupts, runner
from pamconform.core.errors import HarnessError, UsageError
from pamconform.core.redaction import redact
from pamconform.protocols.redirector.hooks import REFERENCE_CREDENTIALS

__all__ = ["REFERENCE_CREDENTIALS", "build_parser", "main"]

#: The subcommands' modules, in ``--help`` order (diff adds ``--baseline`` to the run
#: commands, so it comes after them).
COMMAND_MODULES: list[str] = ["pamconform.cli.server", "pamconform.cli.module",
                              "pamconform.cli.run", "pamconform.cli.reference_server",
                              "pamconform.cli.merge", "pamconform.cli.diff",
                              "pamconform.cli.bench",
                              "pamconform.cli.fuzz", "pamconform.cli.audit"]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="pamconform",
        description="Conformance suite for PAM modules that delegate authentication over "
        "UNIX sockets, and for the auth servers behind them.",
        epilog="exit codes: 0 no case FAILed, 1 a case FAILed, 2 bad usage or input, "
        "3 harness error",
    )
    parser.add_argument("--version", action="version", version=f"pamconform {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def _stdout_broken() -> bool:
    """Whether nobody reads our standard output any more (a closed pipe or socket)."""
    import select

    try:
        poll = select.poll()
        poll.register(sys.stdout.fileno(), select.POLLOUT)
        return any(ev & (select.POLLERR | select.POLLHUP) for _, ev in poll.poll(0))
    except (OSError, ValueError):
        return False


def _stdout_gone() -> int:
    """The reader of our output went away (``--list | head``): stop quietly, as a
    command killed by SIGPIPE would (exit 141), without a second error at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 128 + 13


def apply_jobs(args: argparse.Namespace) -> None:
    """The runner's pool from ``--jobs`` (cli.common.add_run_options): the default pool
    for module targets, given sizes for every target (see runner.SHARED_STATE_KINDS)."""
    if hasattr(args, "jobs"):
        runner.set_jobs(args.jobs or runner.default_jobs(), given=args.jobs is not None)


def main(argv: list[str] | None = None) -> int:
    console = Console()
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv[:1] == ["reference-server"]:
            return run_reference_server(argv[1:])
        args = build_parser().parse_args(argv)
        args.command_line = list(argv)  # what was typed, not defaulted (project_run)
        console.quiet = bool(getattr(args, "quiet", False))
        apply_jobs(args)
        with interrupts.guard():
            return interrupts.leave(int(args.func(args, console)))
    except UsageError as exc:  # composed by pamconform, never with a secret in it (and
        # redacting it would mark words such as USER:PASSWORD that match a password's piece)
        print(f"pamconform: error: {exc}", file=sys.stderr)
        return 2
    except HarnessError as exc:
        print(f"pamconform: harness error: {redact(str(exc))}", file=sys.stderr)
        return 3
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM before any case ran
        stopped = interrupts.as_interrupted(exc)
        print(f"pamconform: interrupted ({stopped.signame})", file=sys.stderr)
        return interrupts.leave(stopped.exit_code, force=stopped is exc)
    except Exception as exc:  # a harness bug: one line, the traceback only on request
        if isinstance(exc, BrokenPipeError) and _stdout_broken():
            return _stdout_gone()
        if os.environ.get("PAMCONFORM_DEBUG"):
            raise
        print(f"pamconform: harness error: {type(exc).__name__}: {redact(str(exc))} "
              "(set PAMCONFORM_DEBUG=1 for the traceback)", file=sys.stderr)
        return 3
    finally:
        runner.set_jobs(None)  # a caller in the same process (a test) gets the library default


if __name__ == "__main__":
    sys.exit(main())
