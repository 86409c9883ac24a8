"""The nslcd protocol's glue to the CLI and ``pamconform run`` (see protocols.hooks).

A server target is a daemon's socket on this host plus logins (``--credentials`` and
friends: the first that names no special account is the ordinary user) and, when the
directory has them, its special accounts by name (``--expired-user``, ``--locked-user``,
``--mixed-case-user``, their passwords among the logins); the cases that need an account
or control of the directory that was not given skip, saying which option would run them.
The lab targets (``--lab-package``) are Debian's nslcd and pynslcd daemons and
libpam-ldapd's pam_ldap.so in the nslcd lab, whose accounts and slapd are known.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from pamconform.core import credentials
from pamconform.core.credentials import Login, show_user
from pamconform.core.errors import UsageError
from pamconform.core.preflight import check_socket
from pamconform.protocols.hooks import LabOptions, LabPackage, ReferenceServer, Say
from pamconform.protocols.nslcd import login_check
from pamconform.protocols.nslcd.profile import PROTOCOL
from pamconform.protocols.nslcd.target import Accounts, HostSocketTarget, NslcdTarget

REFERENCE_MODULE_TARGET: str | None = None
#: A user name no directory is expected to hold (``--unknown-user`` changes it).
UNKNOWN_USER = "pamconform-no-such-user"
#: The special-account options: (dest, flag).
_ACCOUNT_OPTIONS = (("expired_user", "--expired-user"), ("locked_user", "--locked-user"),
                    ("mixed_case_user", "--mixed-case-user"))
#: Package -> daemon in the lab (its socket: lab.SOCKETS).
LAB_DAEMONS = {"nslcd": "nslcd", "pynslcd": "pynslcd"}
#: The module package and the report name of its target.
LAB_MODULE_PACKAGE, LAB_MODULE_TARGET = "libpam-ldapd", "lab:pam_ldap"


def add_server_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        f"{PROTOCOL.name} protocol (a socket target; the lab's targets know their accounts)")
    group.add_argument("--expired-user", metavar="USER",
                       help="a login (its password among the credentials) whose account has "
                       "expired (shadowExpire): N-S3")
    group.add_argument("--locked-user", metavar="USER",
                       help="a login (its password among the credentials) locked by the "
                       "password policy: N-S3")
    group.add_argument("--mixed-case-user", metavar="USER",
                       help="a login (its password among the credentials) asked for in "
                       "another letter case: N-S1")
    group.add_argument("--unknown-user", metavar="USER", default=None,
                       help=f"a user the directory does not hold (default {UNKNOWN_USER})")
    group.add_argument("--daemon-user", metavar="USER",
                       help="the user the daemon runs as (nslcd.conf uid): it may own the "
                       "socket's directory (N-S7)")


def add_module_options(parser: argparse.ArgumentParser) -> None:
    """None: the module targets are lab packages (``--lab-package``)."""


def foreign_server_options(args: argparse.Namespace) -> str | None:
    flags = [flag for dest, flag in (*_ACCOUNT_OPTIONS, ("unknown_user", "--unknown-user"),
                                     ("daemon_user", "--daemon-user"))
             if getattr(args, dest, None)]
    return " and ".join(flags) or None


def server_target(args: argparse.Namespace) -> AbstractContextManager[NslcdTarget]:
    if args.socket is None:
        raise UsageError("server: the SOCKET argument (or --lab-package) is required")
    logins = credentials.gather(args)
    if not logins:
        raise UsageError(f"server: {credentials.NEED_ONE}")
    return _open(args.socket, accounts(logins, args), args)


def accounts(logins: list[Login], args: argparse.Namespace) -> Accounts:
    """The cases' accounts from the logins and the special-account options."""
    by_name: dict[str, bytes] = {}
    for user, password in logins:
        try:
            by_name.setdefault(user.decode(), password)
        except UnicodeDecodeError:
            raise UsageError(f"login {show_user(user)}: an nslcd user name must be UTF-8"
                             ) from None
    special: dict[str, tuple[str, bytes] | None] = {}
    for dest, flag in _ACCOUNT_OPTIONS:
        name = getattr(args, dest, None)
        if name is not None and name not in by_name:
            raise UsageError(f"{flag} {name}: give its password among the credentials "
                             f"({name}:PASSWORD)")
        special[dest] = (name, by_name[name]) if name is not None else None
    taken = {s[0] for s in special.values() if s is not None}
    ordinary = [name for name in by_name if name not in taken]
    if not ordinary:
        raise UsageError("server: the credentials need a login of an ordinary user besides "
                         "the special accounts")
    first = ordinary[0]
    expired, locked, mixed = (special[d] for d, _ in _ACCOUNT_OPTIONS)
    fields: dict[str, Any] = {"expired": None, "locked": None, "mixed": None}
    if expired is not None:
        fields.update(expired=expired[0], expired_password=expired[1])
    if locked is not None:
        fields.update(locked=locked[0], locked_password=locked[1])
    if mixed is not None:
        fields.update(mixed=other_spelling(mixed[0]), mixed_canonical=mixed[0],
                      mixed_password=mixed[1])
    return Accounts(user=first, password=by_name[first], admin_password=None,
                    unknown=getattr(args, "unknown_user", None) or UNKNOWN_USER, **fields)


def other_spelling(name: str) -> str:
    """The name in another letter case: lower case if it has capitals, else upper case."""
    other = name.lower() if name != name.lower() else name.upper()
    if other == name:
        raise UsageError(f"--mixed-case-user {name}: the name has no letter whose case "
                         "could change")
    return other


@contextmanager
def _open(socket: Path, accts: Accounts, args: argparse.Namespace) -> Iterator[NslcdTarget]:
    check_socket(socket, args.timeout)
    yield HostSocketTarget(args.name or str(socket), str(socket), accounts=accts,
                           timeout=args.timeout, idle_limit=args.idle_limit,
                           daemon_user=getattr(args, "daemon_user", None))


def check_login(target: Any) -> None:
    if isinstance(target, NslcdTarget):
        login_check.check_login(target)


def reference_servers(gallery: bool) -> list[ReferenceServer]:
    """None: the daemons are lab packages (:func:`lab_packages`), run unless ``--no-lab``."""
    return []


def lab_packages() -> list[LabPackage]:
    """Debian's nslcd and pynslcd (daemon suite) and libpam-ldapd's pam_ldap (module suite)."""
    daemons = [LabPackage(package, "server", f"lab:{daemon}", _daemon_opener(daemon))
               for package, daemon in LAB_DAEMONS.items()]
    return [*daemons, LabPackage(LAB_MODULE_PACKAGE, "module", LAB_MODULE_TARGET, _lab_module)]


@contextmanager
def _nslcd_lab(options: LabOptions, say: Say) -> Iterator[Any]:
    """A started nslcd lab container (slapd, nslcd, pynslcd), removed on exit."""
    from pamconform.lab import LabSession, connect

    from .lab import ensure_nslcd_image, start_nslcd_lab

    client = connect()
    image = ensure_nslcd_image(client, progress=say)
    with LabSession(client, keep=options.keep) as session:
        lab = start_nslcd_lab(session, image)
        say(f"lab container {lab.box.name} ({image}, network none)")
        yield lab
        if options.keep:
            say(f"--keep: container {lab.box.name} left running")


def _daemon_opener(daemon: str) -> Any:
    @contextmanager
    def open_daemon(options: LabOptions, say: Say) -> Iterator[NslcdTarget]:
        from .target import LabDaemonTarget

        with _nslcd_lab(options, say) as lab:
            target = LabDaemonTarget(lab, daemon, timeout=options.timeout,
                                     idle_limit=options.idle_limit)
            target.name = f"lab:{daemon}"
            yield target

    return open_daemon


@contextmanager
def _lab_module(options: LabOptions, say: Say) -> Iterator[Any]:
    from .module_target import LabModule, LabModuleTarget

    with _nslcd_lab(options, say) as lab:
        target = LabModuleTarget(lab, LabModule(), name=LAB_MODULE_TARGET)
        target.setup()
        try:
            yield target
        finally:
            try:
                target.restore()
            finally:
                target.close()
                if options.keep and target.twin_target is not None:
                    say(f"--keep: container {target.twin_target.box.name} (the N-M2 twin) "
                        "left running")
