"""``pamconform fuzz`` options of the transient-token protocol: the token command."""

from __future__ import annotations

import argparse
import shlex

from pamconform.core.errors import UsageError
from pamconform.protocols.token.fuzz_model import Target
from pamconform.protocols.token.login_check import check_token_command
from pamconform.protocols.token.target_options import make_target


def add_options(parser: argparse.ArgumentParser, replay: bool) -> None:
    parser.add_argument("--token-command", metavar="CMD",
                        help="transient-token findings: mints the fresh token to replay "
                        "against" if replay else "transient-token: prints a fresh token and "
                        "leaves its server waiting (run once per attempt)")


def given(args: argparse.Namespace) -> list[str]:
    """Its own options that ``args`` sets."""
    return ["--token-command"] if getattr(args, "token_command", None) is not None else []


def target(args: argparse.Namespace, replay: bool) -> Target:
    """Check the token command (it mints one token, spent at once); SOCKET is a fixed
    socket or the sockets' directory."""
    if not args.token_command:
        raise UsageError("transient-token: give --token-command CMD (it prints a fresh token "
                         "and leaves its server waiting; it is run once per attempt)")
    made = make_target(args.socket, args.token_command, None, args.timeout, None)
    try:
        check_token_command(made)
    finally:
        made.close()
    return Target(args.token_command, made.source.socket, made.source.socket_dir)


def default_name(args: argparse.Namespace) -> str:
    """The target's name in the report when ``--name`` is not given."""
    return str(args.token_command)


def replay_args(args: argparse.Namespace) -> str:
    where = f"{shlex.quote(str(args.socket))} " if args.socket is not None else ""
    return f"{where}--token-command {shlex.quote(args.token_command)}"
