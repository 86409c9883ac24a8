"""Steps and checks of the nslcd module suite (``suites/nslcd_module/``).

The daemon behaviours are data: (id part, scenario, args, what the daemon does), played
by the scenario server (``--protocol nslcd``) in place of nslcd. A reply is written as
``compose`` tokens (see ``servers/scenario_server.py``); :func:`authc_entry` is the
well-formed success entry the variants start from.
"""

from __future__ import annotations

import threading
from typing import Any

from pamconform.core import interrupts
from pamconform.core.context import CaseContext
from pamconform.core.errors import HarnessError
from pamconform.core.outcome import Fail
from pamconform.drivers.direct import Attempt, expect_ran
from pamconform.drivers.login import LoginOutcome, LoginResult

from .module_target import LOGIN_USER, PASSWORD, LabModuleTarget
from .side_by_side import Behaviour, Played, play_alone, play_side_by_side

#: The user name field after ["int", 0] in a success entry.
_HEAD: list[list[Any]] = [["version"], ["action"], ["begin"], ["int", 0]]


def authc_entry(user: list[Any] | None = None, *, begin: bool = True,
                end: bool = True) -> list[list[Any]]:
    """A PAM_AUTHC success reply as compose tokens (``user`` replaces the name token)."""
    parts: list[list[Any]] = [["version"], ["action"]] + ([["begin"]] if begin else [])
    parts += [["int", 0], user or ["user"], ["int", 0], ["str", ""]]
    return parts + ([["end"]] if end else [])


def _compose(parts: list[list[Any]], then: str = "close") -> dict[str, Any]:
    return {"parts": parts, "then": then}


#: N-M1: every one of these must end in a refusal (anything but PAM_SUCCESS).
REFUSALS: list[Behaviour] = [
    ("deny", "deny", {}, "answers authc AUTH_ERR"),
    ("empty-reply", "empty", {}, "answers with no entry (unknown user)"),
    ("close-before-read", "close-before-read", {}, "closes before reading the request"),
    ("close-after-request", "close-after-request", {},
     "reads the request and closes without a reply"),
    ("reset", "reset", {}, "resets the connection after reading"),
    ("cut-after-header", "compose", _compose([["grant-cut", 8]]),
     "sends the reply header and closes"),
    ("cut-after-begin", "compose", _compose([["grant-cut", 12]]),
     "sends the header and RESULT_BEGIN and closes"),
    ("cut-after-code", "compose", _compose([["grant-cut", 16]]),
     "sends the header, RESULT_BEGIN and authc SUCCESS and closes"),
    ("wrong-version-1", "compose", _compose([["int", 1], *authc_entry()[1:]]),
     "answers a success under version word 1"),
    ("wrong-version-3", "compose", _compose([["int", 3], *authc_entry()[1:]]),
     "answers a success under version word 3"),
    # a whole authc success under PAM_AUTHZ's action word: only the action check refuses it
    ("wrong-action", "compose", _compose([["version"], ["int", 0x000D0002],
                                          *authc_entry()[2:]]),
     "answers a whole success under PAM_AUTHZ's action word"),
    ("no-begin", "compose", _compose(authc_entry(begin=False)),
     "omits RESULT_BEGIN before a success entry"),
    ("end-first", "compose",
     _compose([["version"], ["action"], ["end"], ["int", 0], ["user"], ["int", 0],
               ["str", ""], ["end"]]), "puts RESULT_END where RESULT_BEGIN belongs"),
    ("begin-twice", "compose",
     _compose([["version"], ["action"], ["begin"], ["begin"], ["int", 0], ["user"],
               ["int", 0], ["str", ""], ["end"]]), "sends RESULT_BEGIN twice"),
    ("bad-marker", "compose",
     _compose([["version"], ["action"], ["int", 7], *authc_entry()[3:]]),
     "puts 7 where RESULT_BEGIN belongs"),
    ("garbage", "compose", _compose([["raw", "30" * 24]]), "answers 24 bytes of ASCII '0'"),
    ("binary", "compose", _compose([["raw", bytes(range(0, 256, 4)).hex()]]),
     "answers 64 bytes of binary garbage"),
    ("negative-name-length", "compose", _compose([*_HEAD, ["int", -1]]),
     "declares a user name of length -1 after authc SUCCESS, then closes"),
    ("huge-name-length", "compose", _compose([*_HEAD, ["int", 2147483647]]),
     "declares a user name of 2^31-1 bytes after authc SUCCESS, then closes"),
    ("huge-name", "compose", _compose(authc_entry(["big", 3 * 1024 * 1024])),
     "answers success with a 3 MiB user name"),
    ("long-name", "compose", _compose(authc_entry(["big", 5000])),
     "answers success with a 5000-byte user name"),
    ("huge-message", "compose",
     _compose([["version"], ["action"], ["begin"], ["int", 0], ["user"], ["int", 0],
               ["big", 3 * 1024 * 1024], ["end"]]),
     "answers success with a 3 MiB message"),
]

#: N-M1, graded SHOULD: the whole success entry arrives, only RESULT_END does not.
UNTERMINATED: list[Behaviour] = [
    ("cut-before-end", "compose", _compose(authc_entry(end=False)),
     "sends a whole success entry but closes before RESULT_END"),
    ("cut-mid-end", "compose", _compose([*authc_entry(end=False), ["raw", "0000"]]),
     "sends a success entry and half of RESULT_END"),
]

#: N-M2: the daemon never finishes; the module must give up within its bound.
HANGS: list[Behaviour] = [
    ("silence", "silence", {}, "reads the request and never answers"),
    ("accept-no-read", "accept-no-read", {}, "accepts and never reads"),
    ("stall-mid-reply", "compose", _compose([["grant-cut", 12]], then="stall"),
     "sends the header and RESULT_BEGIN, then stalls"),
]

#: N-M2 end to end: an ssh login while the daemon reads and never answers.
SSH_SILENCE: Behaviour = ("ssh-silence", "silence", {}, "reads the request and never answers")
#: The behaviours that wait out the module's bound side by side (:func:`play_beside`).
BESIDE: list[Behaviour] = [*HANGS, SSH_SILENCE]

#: N-M3: success entries naming another spelling or another user.
SAME_USER_OTHER_CASE = ("case-changed", "compose", _compose(authc_entry(["str", "ALICE"])),
                        "answers success naming ALICE (the same user in another case)")
OTHER_USERS: list[Behaviour] = [
    ("other-user", "compose", _compose(authc_entry(["str", "bob"])),
     "answers success naming bob"),
    ("root-user", "compose", _compose(authc_entry(["str", "root"])),
     "answers success naming root"),
    ("empty-user", "compose", _compose(authc_entry(["str", ""])),
     "answers success with an empty user name"),
]
#: A PAM service whose second line shows PAM_USER after the module (pam_exec, stdout).
SHOW_USER_SCRIPT = "/usr/local/sbin/pc-show-pam-user"
SHOW_USER_MARK = "PC_PAM_USER="


def target(ctx: CaseContext) -> LabModuleTarget:
    return ctx.target  # type: ignore[no-any-return]


def record(ctx: CaseContext, label: str, attempt: Attempt) -> None:
    """Keep what the attempt did as evidence (no password: pamdrive's report has none)."""
    ev: dict[str, Any] = {"label": label, "summary": attempt.summary(), "steps": attempt.steps}
    if attempt.messages:
        ev["messages"] = attempt.messages
    if attempt.raw.get("stderr"):
        ev["stderr"] = str(attempt.raw["stderr"])[-1500:]
    if attempt.valgrind:
        ev["valgrind"] = attempt.valgrind
    ctx.extra.setdefault("attempts", []).append(ev)


def play(ctx: CaseContext, scenario: str, args: dict[str, Any], *, valgrind: bool = False,
         service: str | None = None) -> Attempt:
    """One authentication of LOGIN_USER while the scenario server plays ``scenario``."""
    t = target(ctx)
    proc = t.scenario(scenario, **args)
    kwargs: dict[str, Any] = {"valgrind": valgrind}
    if service:
        kwargs["service"] = service
    attempt = t.attempt(LOGIN_USER, PASSWORD, **kwargs)
    record(ctx, f"daemon {scenario} {args or ''}".strip(), attempt)
    sent = [r.get("sent_hex", "")[:160] for r in proc.log(wait=1)]
    ctx.extra.setdefault("daemon_sent_hex", []).append(sent)
    return attempt


def play_beside(ctx: CaseContext, name: str) -> Played:
    """Behaviour ``name`` of :data:`BESIDE`, from one side-by-side run of all of them per
    target (side_by_side.py: armed in turn, so each connection gets its own behaviour),
    or alone if that run did not count. All of it is played in the target's twin
    container (:meth:`~.module_target.LabModuleTarget.twin`), so the minute it waits
    does not hold up the cases on the target's own socket. A direct behaviour's
    ``attempt`` is an Attempt, the ssh one's a LoginResult."""
    if not _BESIDE_LOCK.acquire(timeout=BESIDE_LOCK_S):
        raise HarnessError("the side-by-side N-M2 run of another case did not end")
    try:
        t = target(ctx)
        tw = t.twin()

        def login(which: str) -> Any:
            return tw.ssh(LOGIN_USER, PASSWORD) if which == SSH_SILENCE[0] else tw.attempt()

        armed: list[bool] = []
        if name not in tw.beside:
            tw.start_sshd()  # before arming: sshd's start is no part of the login
            first = BESIDE[0]
            proc = tw.scenario(first[1], **first[2])
            budget = max(tw.hang_bound + 30, tw.login_timeout + 10)

            def only_waits() -> None:  # the logins are armed: timing cases elsewhere may run
                armed.append(True)
                ctx.only_waits()

            batch = play_side_by_side(proc, BESIDE, login, budget, armed=only_waits)
            tw.beside.update(batch or dict.fromkeys(b[0] for b in BESIDE))
        played: Played | None = tw.beside[name]
        if played is None:
            signum = interrupts.received()
            if signum is not None:
                raise interrupts.Interrupted(signum)
            if armed:
                ctx.works_again()  # a login of its own to run now
            behaviour = next(b for b in BESIDE if b[0] == name)
            played = play_alone(tw.scenario(behaviour[1], **behaviour[2]), behaviour, login)
    finally:
        _BESIDE_LOCK.release()
    ctx.extra["twin"] = t.twin_evidence()
    if played.error is not None:
        raise played.error
    return played


#: How long a case waits for another case's side-by-side run (its budget, then some).
BESIDE_LOCK_S = 200.0
_BESIDE_LOCK = threading.Lock()


def expect_refused(attempt: Attempt, what: str, bound: float) -> None:
    """N-M1: anything but PAM_SUCCESS, from a process that survived and returned."""
    expect_ran(attempt, what, bound)
    if attempt.auth == "PAM_SUCCESS":
        raise Fail(f"{what} to be refused",
                   "PAM_SUCCESS: the module failed open (granted, or returned PAM_IGNORE and "
                   "let the stack decide)")


def expect_granted(attempt: Attempt, what: str, bound: float) -> None:
    expect_ran(attempt, what, bound)
    if attempt.auth != "PAM_SUCCESS":
        raise Fail(f"{what} to be granted (PAM_SUCCESS)", attempt.summary())


def expect_bounded_refusal(ctx: CaseContext, attempt: Attempt, what: str) -> None:
    """N-M2: refused within the bound; the time taken is evidence whatever the verdict."""
    bound = target(ctx).hang_bound
    ctx.extra["hang"] = {"status": attempt.status, "auth": attempt.auth,
                         "seconds": round(attempt.wall_s, 3), "bound_s": bound}
    ctx.note(f"{attempt.auth} after {attempt.wall_s:.1f} s; bound {bound:.1f} s")
    expect_refused(attempt, what, bound)
    if attempt.wall_s > bound:
        raise Fail(f"{what} to return within {bound:.1f} s",
                   f"returned after {attempt.wall_s:.1f} s")


def pam_user_after(attempt: Attempt) -> str | None:
    """PAM_USER as the pam_exec line after the module printed it, if it ran."""
    for message in attempt.messages:
        text = str(message.get("msg", ""))
        if text.startswith(SHOW_USER_MARK):
            return text[len(SHOW_USER_MARK):]
    return None


def show_user_service(t: LabModuleTarget) -> str:
    """A service that reports PAM_USER after the module decided (only if it succeeded)."""
    t.box.put_file(SHOW_USER_SCRIPT, f'#!/bin/sh\necho "{SHOW_USER_MARK}$PAM_USER"\n'.encode(),
                   0o755)
    return t.write_service("pc-ldap-user", (
        "# pamconform: PAM_USER after the module\n"
        f"{t.module.line('[success=ok default=die]')}\n"
        f"auth optional pam_exec.so stdout quiet {SHOW_USER_SCRIPT}\n"
        "account required pam_permit.so\n"))


def record_login(ctx: CaseContext, label: str, result: LoginResult) -> None:
    ev = result.as_evidence()
    ev["label"] = label
    ctx.extra.setdefault("logins", []).append(ev)


def expect_login_denied(ctx: CaseContext, result: LoginResult, what: str, *,
                        where: LabModuleTarget | None = None, via: str = "ssh") -> None:
    """Denied within the login bound, and for an ssh login sshd (of ``where``: default
    the target's own container) still running (a su login starts no sshd to check)."""
    t = where or target(ctx)
    if result.outcome is LoginOutcome.GRANTED:
        raise Fail(f"{what} to be denied", result.detail)
    if result.outcome is LoginOutcome.HUNG:
        raise Fail(f"{what} to end within {t.login_timeout:.0f} s", result.detail)
    if result.outcome is LoginOutcome.ERROR:
        raise Fail(f"{what} to be denied", f"the login ended otherwise: {result.detail}")
    if via == "ssh" and not t.sshd_running():
        raise Fail("sshd to keep running", "sshd is gone after the login")


def expect_login_granted(result: LoginResult, what: str) -> None:
    if result.outcome is not LoginOutcome.GRANTED:
        raise Fail(f"{what} to be granted", f"{result.outcome}: {result.detail}")
