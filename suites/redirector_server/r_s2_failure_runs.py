"""R-S2: hundreds of failures in a row never turn into a grant.

Lock-out and rate-limit counters that wrap (a one-byte count) or reset into a grant
are a known class of defect; they only show after many consecutive failures of one
user name. Three streams of failures run side by side (a known user's wrong passwords,
an unknown user, an empty user name), each as fast as the server answers, with other
users' valid logins in between.
"""

import contextlib
import threading
import time
from dataclasses import dataclass, field

from pamconform.core.credentials import show_user
from pamconform.core.outcome import Fail
from pamconform.core.registry import case_factory
from pamconform.core.verdicts import Severity
from pamconform.core.wirelog import WireLog
from pamconform.protocols.redirector.client import ConnectFailed
from pamconform.protocols.redirector.server_steps import (
    login,
    stranger,
    target,
    wrong_password,
)

case = case_factory(protocol="redirector", kind="server")

#: Consecutive failures sent for each stream (past a one-byte counter's wrap at 256).
RUN = 300
#: Wall time the run may take; against a slow server it stops there (noted).
BUDGET_S = 4.0
#: Workers per stream: the known user's stream gets two (it is the one a lock-out counts).
STREAM_WORKERS = {"wrong password": 2, "unknown user": 1, "empty user name": 1}
#: Pause between two valid logins of the other users during the run.
OTHER_EVERY_S = 0.2
#: How long the case waits for a lock-out of the user to lift (the cases after it
#: log in as the target's users).
LOCK_WAIT_S = 5.0

WRAPS = ("a lock-out or rate-limit counter that wraps (a one-byte count) or resets "
         "can turn a long run of failures into a grant")


@dataclass
class Run:
    """What the streams of the run saw (shared by their workers)."""

    deadline: float
    sent: dict[str, int] = field(default_factory=dict)
    granted: list[tuple[str, int, bytes, object, WireLog]] = field(default_factory=list)
    broken: list[str] = field(default_factory=list)
    improper: list[str] = field(default_factory=list)
    others: list[bool] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)

    def going(self):
        return not self.stop.is_set() and time.monotonic() < self.deadline

    def take(self, stream):
        """The number of the next failure of ``stream``, or None when it has sent RUN."""
        with self.lock:
            n = self.sent.get(stream, 0) + 1
            if n > RUN:
                return None
            self.sent[stream] = n
            return n


def _stream(ctx, run, stream, user, password_of):
    while run.going() and (n := run.take(stream)) is not None:
        log = WireLog()  # hundreds of requests: only the one granted reaches the report
        try:
            reply = login(ctx, user, password_of(n), log=log)
        except ConnectFailed as exc:
            run.broken.append(f"{stream} {n}: {exc}")
            run.stop.set()
            return
        if reply.kind.grants:
            run.granted.append((stream, n, user, reply, log))
            run.stop.set()
        elif not reply.kind.denies:
            run.improper.append(f"{stream}: {reply.describe()}")


def _others(ctx, run, others):
    i = 0
    while others and run.going():
        with contextlib.suppress(ConnectFailed):
            run.others.append(login(ctx, *others[i % len(others)], log=WireLog()).kind.grants)
        i += 1
        run.stop.wait(OTHER_EVERY_S)


def _wait_for_unlock(ctx, user, password):
    """Seconds until a valid login of ``user`` is granted again, or None."""
    start = time.monotonic()
    while time.monotonic() - start < LOCK_WAIT_S:
        time.sleep(0.25)
        if login(ctx, user, password).kind.grants:
            return time.monotonic() - start
    return None


@case(
    "redir.server.long-failure-run",
    rule="R-S2",
    severity=Severity.MUST,
    title=f"{RUN} failures in a row never turn into a grant",
    requirement=f"Over {RUN} consecutive wrong passwords for one user, {RUN} requests of an "
    f"unknown user and {RUN} of an empty user name, interleaved with other users' valid "
    "logins, nothing wrong is granted. The user's valid login afterwards is granted or "
    "refused by a lock-out (reported, not graded).",
    exclusive=("user-state",),
)
def long_failure_run(ctx):
    t = target(ctx)
    victim, others = t.credentials[-1], t.credentials[:-1]
    who = show_user(victim[0])
    user, password = victim
    run = Run(time.monotonic() + BUDGET_S)
    streams = {"wrong password": (user, lambda n: wrong_password(password)),
               "unknown user": (stranger("user"), lambda n: password),
               "empty user name": (b"", lambda n: password)}
    if not others:
        # A lock-out of the only login would make every later case that logs in fail.
        del streams["wrong password"]
        ctx.informational(f"{who} is the only login given: its wrong-password stream is "
                          "not run (give a second login to check a known user's counter)")
    threads = [threading.Thread(target=_stream, args=(ctx, run, name, *streams[name]),
                                daemon=True)
               for name, count in STREAM_WORKERS.items() if name in streams
               for _ in range(count)]
    other = threading.Thread(target=_others, args=(ctx, run, others), daemon=True)
    for th in [*threads, other]:
        th.start()
    for th in threads:
        th.join(BUDGET_S + 2 * t.timeout)
    # the streams are done (or out of time): the other users' logins end with them, and
    # the victim's login is tried at once, while a lock-out the run set still holds
    run.stop.set()
    other.join(2 * t.timeout)
    if run.granted:
        stream, n, whom, reply, log = run.granted[0]
        ctx.extra["granted_request"] = log.as_list()
        raise Fail(f"every {stream} to be denied",
                   f"failure {n} of the {stream} stream (user {show_user(whom)}) was "
                   f"granted: {reply.describe()}", WRAPS)
    if run.broken:
        raise Fail("the server to keep serving through a run of failures", run.broken[0])
    counts = ", ".join(f"{run.sent.get(name, 0)} {name}" for name in streams)
    ctx.note(f"sent {counts} in a row; no failure granted")
    short = [name for name in streams if run.sent.get(name, 0) < RUN]
    if short:
        ctx.informational(f"not reached: the {', '.join(short)} stream(s) stopped at the "
                          f"{BUDGET_S:g} s budget before {RUN} failures, so a counter that "
                          "turns later (e.g. at 256) was not checked")
    if run.improper:
        ctx.non_strict(f"{len(run.improper)} failures answered without a proper denial, "
                       f"e.g. {run.improper[0]}")
    if others:
        ctx.note(f"{sum(run.others)} of {len(run.others)} valid logins of other users "
                 "during the run granted")
        if not all(run.others):
            ctx.informational(f"{run.others.count(False)} valid logins of other users were "
                              "refused during the run (a rate limit across users?)")
    if "wrong password" not in streams:
        return
    after = login(ctx, *victim)
    if after.kind.grants:
        ctx.note(f"{who}'s valid login after the run: granted")
        return
    lifted = _wait_for_unlock(ctx, *victim)
    ctx.informational(
        f"{who}'s valid login after {run.sent.get('wrong password', 0)} wrong passwords was "
        f"refused ({after.describe()}): a lock-out, the server's policy; "
        + (f"granted again after {lifted:.1f} s" if lifted is not None else
           f"still refused after {LOCK_WAIT_S:g} s (later cases that log in as {who} "
           "may fail until it lifts)"))
