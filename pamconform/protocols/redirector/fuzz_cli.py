"""``pamconform fuzz`` options of the redirector protocol: the logins, the corpus."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from pamconform.core import credentials
from pamconform.core.errors import UsageError
from pamconform.core.preflight import check_socket
from pamconform.protocols.redirector.fuzz_model import Target
from pamconform.protocols.redirector.login_check import check_logins

#: Corpus files larger than this are cut (the generator never sends more than 1 MiB).
MAX_CORPUS_FILE = 1 << 20
MAX_CORPUS_FILES = 10_000


def add_options(parser: argparse.ArgumentParser, replay: bool) -> None:
    """``--corpus`` on ``fuzz server`` (the logins' options are the command's own)."""
    if not replay:
        parser.add_argument("--corpus", type=Path, metavar="DIR",
                            help="raw request files to mutate, besides the valid requests")


def given(args: argparse.Namespace) -> list[str]:
    """Its own options that ``args`` sets."""
    return [flag for flag, value in (("--credentials", credentials.given(args)),
                                     ("--corpus", getattr(args, "corpus", None))) if value]


def _corpus(directory: Path | None) -> list[bytes]:
    if directory is None:
        return []
    if not directory.is_dir():
        raise UsageError(f"--corpus {directory}: not a directory")
    out = []
    for path in sorted(directory.iterdir())[:MAX_CORPUS_FILES]:
        if path.is_file():
            try:
                with open(path, "rb") as f:
                    out.append(f.read(MAX_CORPUS_FILE))
            except OSError as exc:
                raise UsageError(f"--corpus {path}: {exc.strerror}") from None
    if not out:
        raise UsageError(f"--corpus {directory}: no files")
    return out


def target(args: argparse.Namespace, replay: bool) -> Target:
    """The target from ``args``, checked up front (UsageError): the socket answers, and
    (fuzzing) every login is granted."""
    if args.socket is None:
        raise UsageError("fuzz replay: a redirector finding needs the server's SOCKET"
                         if replay else "fuzz server: give the server's SOCKET")
    logins = credentials.gather(args)
    if replay:
        check_socket(args.socket, args.timeout)
        return Target(args.socket, logins)
    if not logins:
        raise UsageError(f"fuzz server: {credentials.NEED_ONE}")
    corpus = _corpus(args.corpus)
    check_socket(args.socket, args.timeout)
    check_logins(args.socket, logins, args.timeout)
    return Target(args.socket, logins, corpus)


def default_name(args: argparse.Namespace) -> str:
    """The target's name in the report when ``--name`` is not given."""
    return str(args.socket)


def replay_args(args: argparse.Namespace) -> str:
    """What ``pamconform fuzz replay FINDING`` needs after the file."""
    return shlex.quote(str(args.socket))
