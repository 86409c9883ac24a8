"""The daemon under test: a socket on the host, or a daemon in the nslcd lab container.

Cases describe what to send as :class:`Op` values and get :class:`Result` values back,
whatever the place: :class:`HostSocketTarget` runs the plan in this process (fake
daemons in the self-tests, any daemon whose socket the harness can reach), and
:class:`LabDaemonTarget` runs the same plan inside the lab container through the probe
(the container has no network, so its sockets are reachable only by ``docker exec``).
Every op is logged to the case's wire log by its label: request bytes carry passwords,
so they are never logged; reply bytes are.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pamconform.core.outcome import Skip
from pamconform.core.redaction import redact, register_login
from pamconform.core.wirelog import WireLog

from . import codec, probe

if TYPE_CHECKING:  # Docker glue is not needed for a host socket
    from .lab import NslcdLab

#: The uid the suite uses for an unprivileged peer.
NOBODY = 65534


class LdapControlUnavailable(Exception):
    """This target cannot stop or pause the directory behind the daemon."""


#: The directory's special accounts a case may need: what it is, the option naming it.
ROLES = {"expired": ("an expired account (shadowExpire passed)", "--expired-user"),
         "locked": ("an account locked by the password policy", "--locked-user"),
         "mixed": ("a user whose directory spelling differs in letter case", "--mixed-case-user")}


class MissingAccount(Skip):
    """The case needs a special account the target's directory was not said to have."""


@dataclass(frozen=True)
class Accounts:
    """The directory's users the cases need (defaults: the lab's fixture directory).

    ``mixed`` is a user name spelled differently from the directory's ``mixed_canonical``.
    A special account that is ``None`` (``expired``, ``locked``, ``mixed``) is unknown for
    this directory: the cases that need it skip (:meth:`need`), never guess. The lab's
    passwords are fixtures of ``containers/nslcd/``, not secrets; they are registered for
    redaction all the same, like any login given to a run.
    """

    user: str = "nancy"
    password: bytes = field(default=b"nancy-ldap-pw", repr=False)
    expired: str | None = "oscar"
    expired_password: bytes = field(default=b"oscar-ldap-pw", repr=False)
    locked: str | None = "lucy"
    locked_password: bytes = field(default=b"lucy-ldap-pw", repr=False)
    mixed: str | None = "mixed"
    mixed_canonical: str = "Mixed"
    mixed_password: bytes = field(default=b"mixed-ldap-pw", repr=False)
    #: the rootpwmoddn password, if known (only used to make a wrong one)
    admin_password: bytes | None = field(default=b"pwadmin-ldap-pw", repr=False)
    unknown: str = "ghost"

    def need(self, *roles: str) -> None:
        """Skip the case unless the accounts of these roles (``ROLES``) are known."""
        for role in roles:
            if getattr(self, role) is None:
                what, option = ROLES[role]
                raise MissingAccount(f"needs {what}: none was named (give one with {option})")

    def register(self) -> None:
        pairs = [(self.user, self.password)]
        if self.expired is not None:
            pairs.append((self.expired, self.expired_password))
        if self.locked is not None:
            pairs.append((self.locked, self.locked_password))
        if self.mixed is not None:
            pairs.append((self.mixed_canonical, self.mixed_password))
        if self.admin_password is not None:
            pairs.append(("rootpwmoddn", self.admin_password))
        for user, password in pairs:
            register_login(user.encode(), password)


@dataclass(frozen=True)
class Op:
    """One exchange: the request in chunks, the action whose reply to expect, a label."""

    label: str
    chunks: tuple[bytes, ...]
    expect: int
    timeout: float
    pause: float = 0.0
    delay: float = 0.0
    uid: int | None = None

    def plan_entry(self) -> dict[str, Any]:
        return {"op": "exchange", "chunks": [c.hex() for c in self.chunks],
                "expect": self.expect, "timeout": self.timeout, "pause": self.pause,
                "delay": self.delay, "uid": self.uid}


@dataclass(frozen=True)
class Result:
    """What one exchange got: a decoded reply or why there was none."""

    op: Op
    raw: dict[str, Any]

    @property
    def answered(self) -> bool:
        return bool(self.raw.get("ok"))

    @property
    def entries(self) -> list[dict[str, Any]]:
        return list(self.raw.get("entries") or [])

    @property
    def entry(self) -> dict[str, Any] | None:
        return self.entries[0] if self.entries else None

    @property
    def kind(self) -> str:
        """``reply``, or the failure kind (closed, reset, timeout, malformed, connect …)."""
        return "reply" if self.answered else str(self.raw.get("kind", "?"))

    @property
    def elapsed_s(self) -> float:
        return float(self.raw.get("elapsed_s", 0.0))

    @property
    def received(self) -> bytes:
        return bytes.fromhex(str(self.raw.get("received_hex", "")))

    @property
    def code(self) -> int | None:
        """The first code of the entry: authc for PAM_AUTHC, the code for AUTHZ/PWMOD."""
        e = self.entry
        if e is None:
            return None
        for key in ("authc", "code"):
            if key in e:
                return int(e[key])
        return None

    @property
    def granted(self) -> bool:
        """The reply would let pam_ldap's step succeed (first code SUCCESS)."""
        return self.answered and self.code == codec.PamCode.SUCCESS

    @property
    def username(self) -> str | None:
        e = self.entry
        return None if e is None or "username" not in e else str(e["username"])

    @property
    def authz(self) -> int | None:
        e = self.entry
        return None if e is None or "authz" not in e else int(e["authz"])

    def describe(self) -> str:
        """One line: the reply's codes and user, or how the exchange ended and when."""
        at = f" after {self.elapsed_s:.2f} s"
        if not self.answered:
            got = int(self.raw.get("received_len", 0))
            phase = self.raw.get("phase") or ""
            what = {"closed": "closed", "reset": "reset", "timeout": "no reply (timeout)",
                    "connect": "connect failed", "malformed": "malformed reply",
                    "too-large": "reply too large"}.get(self.kind, self.kind)
            detail = str(self.raw.get("detail", ""))
            return (f"{what}{f' in {phase}' if phase else ''} with {got} bytes received"
                    f"{at} ({detail})")
        e = self.entry
        if e is None:
            return f"empty reply (no entry){at}"
        parts = []
        for key in ("authc", "code", "authz"):
            if key in e:
                parts.append(f"{key} {codec.code_name(int(e[key]))}")
        # the daemon's words are data: redacted as such, so no word of theirs is prose
        if "username" in e:
            parts.append(f"user {redact(repr(e['username']), data=True)}")
        if e.get("message"):
            parts.append(f"message {redact(repr(str(e['message'])), data=True)[:120]}")
        return ", ".join(parts) + at


class NslcdTarget:
    """A daemon speaking the nslcd protocol, and what the suite may do to it."""

    kind = "server"

    def __init__(self, name: str, socket: str, *, accounts: Accounts | None = None,
                 timeout: float = 5.0, idle_limit: float = 10.0,
                 ldap_limit: float = 15.0, daemon_user: str | None = None) -> None:
        self.name = name
        #: the user the daemon runs as (nslcd.conf ``uid``), if known: it may own the
        #: socket's directory
        self.daemon_user = daemon_user
        self.socket = socket
        self.accounts = accounts or Accounts()
        self.accounts.register()
        #: how long one exchange may take before it is "hung"
        self.timeout = timeout
        #: how long a case waits for the daemon to drop a stalled client (N-S5)
        self.idle_limit = idle_limit
        #: how long an answer may take while LDAP is down or paused (N-S8)
        self.ldap_limit = ldap_limit

    def _run_plan(self, plan: dict[str, Any], budget: float) -> list[dict[str, Any]]:
        raise NotImplementedError

    def run(self, log: WireLog, ops: Sequence[Op], *, parallel: bool = False) -> list[Result]:
        """Make the exchanges (in order, or all at once) and log each by its label."""
        plan = {"socket": self.socket, "parallel": parallel,
                "ops": [op.plan_entry() for op in ops]}
        budget = (max if parallel else sum)(op.timeout + op.delay for op in ops) + 10
        raws = self._run_plan(plan, budget)
        results = [Result(op, raw) for op, raw in zip(ops, raws, strict=True)]
        for r in results:
            conn = log.new_conn()
            peer = f" as uid {r.op.uid}" if r.op.uid is not None else ""
            size = sum(len(c) for c in r.op.chunks)
            log.add(conn, "send", f"{r.op.label}{peer} ({size} B in {len(r.op.chunks)} writes)")
            if r.received:
                log.add(conn, "recv", r.received)
            log.add(conn, "outcome", r.describe())
        return results

    @property
    def can_switch_uid(self) -> bool:
        """Whether an op may run as another uid (the probe forks and setuid()s)."""
        return os.geteuid() == 0

    def stat(self) -> dict[str, Any]:
        """Mode and owner of the socket and of its directory, as the daemon's host sees them."""
        return self._run_plan({"socket": self.socket, "ops": [{"op": "stat"}]}, 15)[0]

    def ldap(self, command: str) -> None:
        """``stop``/``start``/``pause``/``resume`` the directory (lab targets only)."""
        raise LdapControlUnavailable(f"{self.name}: the directory cannot be controlled here")


class HostSocketTarget(NslcdTarget):
    """A daemon whose socket this process can reach."""

    def _run_plan(self, plan: dict[str, Any], budget: float) -> list[dict[str, Any]]:
        return probe.run_plan(plan)


class LabDaemonTarget(NslcdTarget):
    """``nslcd`` or ``pynslcd`` in a running nslcd lab container."""

    def __init__(self, lab: NslcdLab, daemon: str, **kwargs: Any) -> None:
        from .lab import LAB_DAEMON_USER, SOCKETS

        kwargs.setdefault("daemon_user", LAB_DAEMON_USER)
        super().__init__(daemon, SOCKETS[daemon], **kwargs)
        self.lab = lab

    def _run_plan(self, plan: dict[str, Any], budget: float) -> list[dict[str, Any]]:
        out = self.lab.probe(plan, timeout=budget)
        return list(out)

    @property
    def can_switch_uid(self) -> bool:
        return True  # the probe runs as root in the container

    def ldap(self, command: str) -> None:
        self.lab.control(f"{command}-slapd", timeout=30)
