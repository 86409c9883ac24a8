"""pexpect drivers for ssh (keyboard-interactive, password) and su.

A driver runs a real client through a pty (a :data:`Spawner` builds its argv, usually
:meth:`pamconform.lab.LabContainer.exec_argv` into the lab container, so traffic stays
in the container's own network namespace), answers the password prompt, and grades what
happens:

- GRANTED: a shell ran and ``id -un`` printed the expected user;
- DENIED: the client said so (``Permission denied``, ``Authentication failure``);
- HUNG: nothing conclusive within the timeout;
- ERROR: the client failed for another reason (the transcript says why).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import pexpect

from pamconform.core.redaction import redact

#: ``spawner(cmd, user)``: the host argv running ``cmd`` as ``user`` on a pty in the lab.
Spawner = Callable[[list[str], str], list[str]]

MARK = "PCID"
PROMPT = re.compile(rb"(?i)(?:password|passcode|token)[^\r\n]*:")


class LoginOutcome(StrEnum):
    """How a login attempt ended."""

    GRANTED = "GRANTED"
    DENIED = "DENIED"
    HUNG = "HUNG"
    ERROR = "ERROR"


@dataclass
class LoginResult:
    """Outcome, latency and the full transcript of one login."""

    outcome: LoginOutcome
    latency_s: float
    transcript: str
    detail: str = ""
    argv: list[str] = field(default_factory=list)
    prompts: int = 0

    def as_evidence(self) -> dict[str, Any]:
        return {
            "outcome": str(self.outcome),
            "latency_s": round(self.latency_s, 3),
            "detail": self.detail,
            "command": " ".join(self.argv),
            "prompts": self.prompts,
            # what su or ssh printed is data: redacted as such, whole, before the cut
            "transcript": redact(self.transcript, data=True)[-4000:],
        }


def _drive(
    argv: list[str],
    passwords: list[str],
    expect_user: str,
    denied: list[bytes],
    timeout: float,
) -> LoginResult:
    start = time.monotonic()
    child = pexpect.spawn(argv[0], argv[1:], timeout=timeout, echo=False)
    log: list[bytes] = []
    prompts = 0
    deadline = start + timeout
    granted = re.compile(rf"{MARK}=({re.escape(expect_user)}|[^\r\n]*)\r?\n".encode())
    patterns: list[Any] = [PROMPT, granted, *denied, pexpect.EOF, pexpect.TIMEOUT]
    outcome, detail = LoginOutcome.HUNG, f"no conclusion within {timeout:.1f} s"
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            idx = child.expect(patterns, timeout=left)
            log.append((child.before or b"") + (child.after if isinstance(child.after, bytes)
                                                 else b""))
            if idx == 0:
                if prompts >= len(passwords):
                    outcome, detail = LoginOutcome.DENIED, "asked again after the last password"
                    break
                child.sendline(passwords[prompts])
                prompts += 1
                continue
            if idx == 1:
                who = child.match.group(1).decode(errors="replace")
                if who == expect_user:
                    outcome, detail = LoginOutcome.GRANTED, f"shell ran as {who}"
                else:
                    outcome, detail = LoginOutcome.ERROR, f"shell ran as {who!r}, not {expect_user}"
                break
            if 2 <= idx < 2 + len(denied):
                outcome, detail = LoginOutcome.DENIED, child.after.decode(errors="replace")
                break
            if patterns[idx] is pexpect.EOF:
                outcome, detail = LoginOutcome.ERROR, "the client exited without a verdict"
                break
            break  # TIMEOUT: HUNG
    finally:
        child.close(force=True)
    latency = time.monotonic() - start
    transcript = b"".join(log).decode("utf-8", "replace").replace("\r\n", "\n")
    return LoginResult(outcome, latency, transcript, detail, argv, prompts)


def ssh_login(
    spawner: Spawner,
    user: str,
    passwords: list[str] | str,
    *,
    method: str = "keyboard-interactive",
    host: str = "127.0.0.1",
    port: int = 22,
    timeout: float = 20.0,
) -> LoginResult:
    """Log in with ssh using ``method`` (keyboard-interactive or password) and run id -un."""
    pw = [passwords] if isinstance(passwords, str) else passwords
    cmd = [
        "ssh", "-tt", "-p", str(port),
        "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
        "-o", "LogLevel=ERROR", "-o", "BatchMode=no",
        "-o", f"PreferredAuthentications={method}",
        "-o", "PubkeyAuthentication=no", "-o", "GSSAPIAuthentication=no",
        "-o", f"NumberOfPasswordPrompts={len(pw)}",
        "-o", f"ConnectTimeout={max(1, int(timeout))}",
        f"{user}@{host}", f"echo {MARK}=$(id -un)",
    ]
    denied = [rb"Permission denied[^\r\n]*", rb"Connection closed[^\r\n]*",
              rb"Too many authentication failures[^\r\n]*"]
    return _drive(spawner(cmd, "root"), pw, user, denied, timeout)


def su_login(
    spawner: Spawner,
    as_user: str,
    target_user: str,
    password: str,
    *,
    timeout: float = 20.0,
) -> LoginResult:
    """As ``as_user``, run ``su target_user -c 'id -un'`` and answer its prompt."""
    cmd = ["su", target_user, "-c", f"echo {MARK}=$(id -un)"]
    denied = [rb"su: [^\r\n]+"]
    return _drive(spawner(cmd, as_user), [password], target_user, denied, timeout)
