"""``pamconform fuzz`` options of the nslcd protocol: the logins, the idle limit."""

from __future__ import annotations

import argparse
import shlex

from pamconform.core import credentials
from pamconform.core.errors import UsageError
from pamconform.core.options import SECONDS
from pamconform.core.preflight import check_socket

from . import client, codec
from .fuzz_model import Target
from .profile import PROTOCOL

DEFAULT_IDLE_LIMIT = 10.0


def add_options(parser: argparse.ArgumentParser, replay: bool) -> None:
    if not replay:
        parser.add_argument("--idle-limit", type=SECONDS, metavar="SECONDS",
                            help=f"{PROTOCOL.name}: how long a client stalled inside a request "
                            f"waits to be closed (default {DEFAULT_IDLE_LIMIT:g})")


def given(args: argparse.Namespace) -> list[str]:
    """Its own options that ``args`` sets."""
    return [flag for flag, value in (("--credentials", credentials.given(args)),
                                     ("--idle-limit", getattr(args, "idle_limit", None)))
            if value]


def login_refused(path: str, user: bytes, password: bytes, timeout: float) -> str | None:
    """None if the daemon grants the login, else what came back."""
    got = client.exchange(path, codec.AuthcRequest(codec.PamContext(user), password),
                          timeout=timeout)
    if isinstance(got, client.Answer):
        entry = got.reply.entry
        if isinstance(entry, codec.AuthcResult) and entry.granted:
            return None
        if isinstance(entry, codec.AuthcResult):
            return f"authc {codec.code_name(entry.authc)}"
        return "a reply with no entry (unknown user)"
    return f"{got.kind}: {got.detail}"


def target(args: argparse.Namespace, replay: bool) -> Target:
    """The target from ``args``, checked up front (UsageError): the socket answers, and
    (fuzzing) the daemon grants every login."""
    if args.socket is None:
        raise UsageError(f"fuzz {'replay' if replay else 'server'}: give the {PROTOCOL.name} "
                         "daemon's SOCKET (e.g. /run/nslcd/socket)")
    logins = credentials.gather(args)
    check_socket(args.socket, args.timeout)
    if replay:
        return Target(args.socket, logins)
    if not logins:
        raise UsageError(f"fuzz server: {credentials.NEED_ONE}")
    for user, password in logins:
        why = login_refused(str(args.socket), user, password, args.timeout)
        if why is not None:
            raise UsageError(f"{args.socket}: the daemon does not grant "
                             f"{credentials.show_user(user)}'s login ({why}); the fuzzer "
                             "needs logins it grants")
    idle = args.idle_limit if args.idle_limit is not None else DEFAULT_IDLE_LIMIT
    return Target(args.socket, logins, idle_limit=idle)


def default_name(args: argparse.Namespace) -> str:
    return str(args.socket)


def replay_args(args: argparse.Namespace) -> str:
    return shlex.quote(str(args.socket))
