"""R-S5: thousands of mixed requests, correct replies throughout, no resource growth.

Two workers send requests that need a password check (valid, wrong, unknown user) and
six send cheap ones (empty user, garbage, a missing line, clients that leave early or
reset), for two phases of a bounded time. With the server's PID (``--pid``) its open
descriptors and resident memory are sampled before, between and after the phases;
growth in both phases is a leak.
"""

import random
import threading
import time
from dataclasses import dataclass, field

from pamconform.core import procstat
from pamconform.core.outcome import Fail
from pamconform.core.registry import case_factory
from pamconform.core.verdicts import Severity
from pamconform.core.wirelog import WireLog
from pamconform.protocols.redirector.client import ConnectFailed, Connection, request
from pamconform.protocols.redirector.server_steps import (
    ask,
    expect_alive,
    stranger,
    target,
    wrong_password,
)

case = case_factory(protocol="redirector", kind="server")

#: Requests per phase at most, and the wall time of a phase.
PHASE_REQUESTS = 2000
PHASE_S = 2.0
#: What the checking and the cheap workers send, in turn.
CHECKED = ("valid", "wrong", "unknown")
CHEAP = ("empty-user", "garbage", "missing-line", "leaves-at-once", "leaves-mid-request",
         "resets", "leaves-unread")
CHECKING_WORKERS, CHEAP_WORKERS = 2, 6
#: Requests that end (half-close) before their second newline: no whole request was
#: made, so a close without a reply is as right as a denial (R-S2's missing line).
INCOMPLETE = frozenset({"garbage", "missing-line"})
#: Growth in each phase beyond which descriptors or memory count as leaking.
FD_SLACK = 16
RSS_SLACK_KIB = 128 * 1024
#: With --pid, the run stops at once when resident memory grows by this much (a server
#: that keeps a buffer per request would otherwise take the host's memory).
RSS_ABORT_KIB = 512 * 1024


@dataclass
class Tally:
    """What one phase saw (shared by its workers)."""

    sent: dict[str, int] = field(default_factory=dict)
    wrong: list[str] = field(default_factory=list)
    improper: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, kind):
        with self.lock:
            self.sent[kind] = self.sent.get(kind, 0) + 1
            return sum(self.sent.values())


def _payload(kind, user, password, rng):
    if kind == "empty-user":
        return request(b"", password)
    if kind == "garbage":
        return bytes(rng.choice(range(11, 256)) for _ in range(rng.randrange(1, 64)))
    return user + b"\n"  # missing-line


def _one(ctx, kind, rng, tally):
    """Send one request of ``kind``; record what was wrong with its reply."""
    t = target(ctx)
    log = WireLog()  # thousands of requests: only summaries reach the report
    user, password = t.user, t.password
    if kind in ("leaves-at-once", "leaves-mid-request", "resets", "leaves-unread"):
        with Connection(t.socket, log, t.timeout) as conn:
            if kind == "leaves-mid-request":
                conn.send(user + b"\n" + password[:1])
            elif kind == "resets":
                conn.send(user + b"\n")
                conn.reset()
            elif kind == "leaves-unread":
                conn.send(request(b"", password))
        return
    if kind in CHECKED:
        # Wrong passwords go to an unknown user: a lock-out of the target's user (even
        # one a grant does not reset) must not refuse the valid logins.
        pair = {"valid": (user, password),
                "wrong": (stranger("user"), wrong_password(password)),
                "unknown": (stranger("user"), password)}[kind]
        reply = ask(ctx, request(*pair), log=log)
    else:
        reply = ask(ctx, _payload(kind, user, password, rng), shutdown=True, log=log)
    if kind == "valid":
        if not reply.kind.grants:
            tally.wrong.append(f"a valid login was not granted: {reply.describe()}")
    elif reply.kind.grants:
        tally.wrong.append(f"a {kind} request was granted: {reply.describe()}")
    elif reply.timed_out and not reply.data:  # a late close after a denial is R-S3's
        tally.wrong.append(f"a {kind} request was not answered: {reply.describe()}")
    elif not reply.kind.denies and not (kind in INCOMPLETE and not reply.data
                                        and (reply.eof or reply.reset)):
        tally.improper.append(f"{kind}: {reply.describe()}")


def _worker(ctx, kinds, offset, tally, stop, deadline):
    rng = random.Random(offset)
    i = offset
    while not stop.is_set() and time.monotonic() < deadline:
        kind = kinds[i % len(kinds)]
        i += 1
        if tally.count(kind) > PHASE_REQUESTS:
            return
        try:
            _one(ctx, kind, rng, tally)
        except ConnectFailed as exc:
            tally.wrong.append(f"a {kind} client could not connect: {exc}")
        if tally.wrong:
            stop.set()


def _watch_memory(pid, base_kib, tally, stop):
    """Stop the phase when the server's memory grows past RSS_ABORT_KIB."""
    while not stop.wait(0.1):
        rss = procstat.rss_kib(pid)
        if rss is not None and rss - base_kib > RSS_ABORT_KIB:
            tally.wrong.append(f"resident memory grew from {base_kib} to {rss} KiB during "
                               "the run (stopped early)")
            stop.set()


def _phase(ctx, base_kib):
    tally, stop = Tally(), threading.Event()
    deadline = time.monotonic() + PHASE_S
    workers = [threading.Thread(target=_worker, args=(ctx, CHECKED, i, tally, stop, deadline),
                                daemon=True) for i in range(CHECKING_WORKERS)]
    workers += [threading.Thread(target=_worker, args=(ctx, CHEAP, i, tally, stop, deadline),
                                 daemon=True) for i in range(CHEAP_WORKERS)]
    pid = target(ctx).pid
    watch = None
    if pid is not None and base_kib is not None:
        watch = threading.Thread(target=_watch_memory, args=(pid, base_kib, tally, stop),
                                 daemon=True)
        watch.start()
    for w in workers:
        w.start()
    for w in workers:
        w.join(PHASE_S + 3 * target(ctx).timeout)
    stop.set()
    if watch is not None:
        watch.join(1.0)
    return tally


def judge_growth(samples):
    """Problems with (fds, rss_kib) samples before, between and after the two phases.

    Growth in only one phase is a cache or a pool filling up; growth in both is a leak.

    >>> judge_growth([(10, 9000), (11, 9100), (10, 9050)])
    []
    >>> judge_growth([(10, 9000), (400, 9100), (790, 9050)])
    ['open descriptors grew in both phases: 10, 400, 790']
    """
    problems = []
    for i, (what, slack) in enumerate((("open descriptors", FD_SLACK),
                                       ("resident memory (KiB)", RSS_SLACK_KIB))):
        values = [s[i] for s in samples]
        if None in values:
            continue
        if values[1] - values[0] > slack and values[2] - values[1] > slack:
            problems.append(f"{what} grew in both phases: {', '.join(map(str, values))}")
    return problems


def _sample(ctx, pid, samples):
    s = procstat.settled_sample(pid)
    samples.append((s.fds, s.rss_kib))


@case(
    "redir.server.endurance",
    rule="R-S5",
    severity=Severity.MUST,
    title="Thousands of mixed requests answered correctly, no leak",
    requirement=f"Over two phases of {PHASE_S:g} s (up to {PHASE_REQUESTS} requests each) of "
    "valid, wrong-password (for an unknown user), unknown-user, empty-user, garbage and "
    "missing-line requests and clients "
    "that leave early or reset, every reply is right, and afterwards a valid login is "
    "granted and a wrong one denied. With --pid, open descriptors and resident memory do "
    f"not grow in both phases (by more than {FD_SLACK} descriptors or "
    f"{RSS_SLACK_KIB // 1024} MiB each).",
    exclusive=("target",),
)
def endurance(ctx):
    t = target(ctx)
    pid = t.pid
    samples = []
    if pid is not None:
        _sample(ctx, pid, samples)
    totals: dict[str, int] = {}
    improper = []
    started = time.monotonic()
    for phase in (1, 2):
        tally = _phase(ctx, samples[0][1] if samples else None)
        for kind, n in tally.sent.items():
            totals[kind] = totals.get(kind, 0) + n
        improper += tally.improper
        if tally.wrong:
            raise Fail("every reply of the endurance run to be right (and with --pid, "
                       "memory bounded)",
                       f"in phase {phase}, after {sum(totals.values())} requests: "
                       + "; ".join(tally.wrong[:3]))
        if pid is not None:
            _sample(ctx, pid, samples)
    elapsed = time.monotonic() - started
    ctx.extra["endurance_requests"] = dict(sorted(totals.items()))
    ctx.note(f"{sum(totals.values())} requests in {elapsed:.1f} s, every reply right")
    if improper:
        ctx.non_strict(f"{len(improper)} refusals were not a proper denial, e.g. {improper[0]}")
    expect_alive(ctx, "after the endurance run")
    if pid is None:
        ctx.note("no --pid: the server's descriptors and memory were not watched")
        return
    ctx.extra["server_resources"] = {"pid": pid, "fds": [s[0] for s in samples],
                                     "rss_kib": [s[1] for s in samples]}
    if any(None in s for s in samples):
        ctx.note(f"/proc/{pid} was not fully readable: growth judged on what was")
    fds, rss = [s[0] for s in samples], [s[1] for s in samples]
    ctx.note(f"server pid {pid}: open descriptors {fds}, resident memory {rss} KiB "
             "(before, between and after the phases)")
    problems = judge_growth(samples)
    if problems:
        raise Fail("the server's descriptors and memory to stay bounded", "; ".join(problems))
