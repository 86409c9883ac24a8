"""Load generator: auth round-trips per second and latency percentiles over a UNIX socket.

Each round-trip does what the PAM module does: connect, write ``user\\npassword\\n``,
read the reply (one read, as the module does), close. Latency runs from ``connect`` to
that first reply byte.

To keep the generator out of the way, connections are driven by non-blocking sockets
on an ``epoll`` loop (no thread per connection), spread over worker processes (by
default one per two CPUs, leaving the rest to the server; at most one per connection),
which start together once all have forked. ``benchmarks/bench_servers.py`` measures
it against a plain C client loop.

Every worker sweeps its round trips every :data:`SWEEP_S`: it gives up on those older
than the timeout, publishes its counts (read for the progress lines) and looks for a
stop. Ctrl-C or SIGTERM (under :func:`pamconform.core.interrupts.guard`) stops every
worker at its next sweep; the round trips that finished are kept, those in flight are
dropped, and :func:`run` raises :class:`~pamconform.core.interrupts.Interrupted` whose
``partial`` is the :class:`BenchResult` of what finished. Every wait has a bound and no
worker process outlives :func:`run`.

    >>> percentile([1.0, 2.0, 3.0, 4.0], 50)
    2.0
"""

from __future__ import annotations

import contextlib
import errno
import math
import multiprocessing
import os
import queue as queues
import select
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pamconform.core import interrupts
from pamconform.core.wire import BACKLOG_PAUSE_S, connect_unix, retry_while_backlog_full

MIXES = ("grant", "deny", "mixed")
#: Appended to a valid password to make a wrong one.
WRONG_SUFFIX = b"-pc-bench-wrong"
#: Bytes read for the reply (the original module reads at most 4).
REPLY_READ = 64
#: How often a worker gives up on round trips older than the timeout, publishes its
#: counts and looks for a stop (Ctrl-C), in seconds.
SWEEP_S = 0.1
#: How long the worker processes may take to fork and say they are ready.
READY_WAIT_S = 30.0
#: How long the worker processes get to hand in their figures once told to stop.
STOP_WAIT_S = 5.0
#: How long a worker process gets to exit after its figures are in (then it is killed).
EXIT_WAIT_S = 5.0
#: The counts each worker publishes for the progress lines, in this order.
_COUNTS = ("completed", "unexpected", "errors", "timeouts")


@dataclass(frozen=True)
class Request:
    """One auth request and the answer a correct server gives to it."""

    payload: bytes
    expect_grant: bool


def plan(credentials: list[tuple[bytes, bytes]], mix: str) -> list[Request]:
    """The cycle of requests for a mix: valid logins, wrong passwords, or both alternating.

    >>> [r.expect_grant for r in plan([(b"a", b"p")], "mixed")]
    [True, False]
    """
    if mix not in MIXES:
        raise ValueError(f"mix must be one of {MIXES}")
    if not credentials:
        raise ValueError("at least one credential is needed")
    grant = [Request(u + b"\n" + p + b"\n", True) for u, p in credentials]
    deny = [Request(u + b"\n" + p + WRONG_SUFFIX + b"\n", False) for u, p in credentials]
    if mix == "grant":
        return grant
    if mix == "deny":
        return deny
    return [r for pair in zip(grant, deny, strict=True) for r in pair]


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (0.0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


@dataclass
class WorkerStats:
    """What one worker process measured."""

    latencies: list[float] = field(default_factory=list)
    granted: int = 0
    denied: int = 0
    unexpected: int = 0  # a grant where a denial was due, or the reverse
    malformed: int = 0  # a reply that is neither 0 nor a non-zero digit string
    errors: int = 0  # connect refused, reset, closed without a reply
    timeouts: int = 0
    connect_retries: int = 0  # the listen backlog was full (EAGAIN)
    first_error: str = ""
    started: float = 0.0
    ended: float = 0.0
    stopped: bool = False  # told to stop (Ctrl-C) before its time or quota ran out

    def counts(self) -> tuple[int, int, int, int]:
        """What the progress lines show (:data:`_COUNTS`)."""
        return len(self.latencies), self.unexpected, self.errors, self.timeouts


@dataclass(frozen=True)
class Progress:
    """The figures of a run still going, for a progress line."""

    elapsed_s: float
    completed: int
    unexpected: int
    errors: int
    timeouts: int

    @property
    def per_second(self) -> float:
        return self.completed / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def line(self) -> str:
        """``5.0 s: 1,234 round trips (246/s), 0 unexpected`` (errors and timeouts when
        there are any)."""
        text = (f"{self.elapsed_s:.1f} s: {self.completed:,} round trips "
                f"({self.per_second:,.0f}/s), {self.unexpected:,} unexpected")
        if self.errors:
            text += f", {self.errors:,} errors"
        if self.timeouts:
            text += f", {self.timeouts:,} timeouts"
        return text


OnProgress = Callable[[Progress], None]


@dataclass
class BenchResult:
    """The figures of one benchmark run."""

    socket: str
    concurrency: int
    workers: int
    mix: str
    seconds_limit: float
    count_limit: int | None
    elapsed_s: float
    completed: int  # round-trips that got a reply
    granted: int
    denied: int
    unexpected: int
    malformed: int
    errors: int
    timeouts: int
    connect_retries: int
    first_error: str
    latencies_ms: list[float] = field(repr=False, default_factory=list)
    #: the signal that stopped the run early (``SIGINT``, ``SIGTERM``), else None: the
    #: figures are then of the round trips that finished before it
    interrupted: str | None = None
    #: worker processes whose figures did not come in after the stop (not counted)
    unreported_workers: int = 0

    @property
    def per_second(self) -> float:
        return self.completed / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def pct(self, q: float) -> float:
        """Latency percentile in milliseconds."""
        return percentile(self.latencies_ms, q)

    def summary(self) -> dict[str, Any]:
        """The figures as a JSON-ready dict (latencies summarised, not listed)."""
        out = asdict(self)
        del out["latencies_ms"]
        out.update(
            per_second=round(self.per_second, 1),
            latency_ms={
                "p50": round(self.pct(50), 3), "p90": round(self.pct(90), 3),
                "p99": round(self.pct(99), 3),
                "max": round(self.latencies_ms[-1], 3) if self.latencies_ms else 0.0,
                "mean": round(sum(self.latencies_ms) / len(self.latencies_ms), 3)
                if self.latencies_ms else 0.0,
            },
        )
        return out

    def lines(self) -> list[str]:
        """The figures as readable lines."""
        s = self.summary()
        lat = s["latency_ms"]
        out = [
            f"completed {self.completed} auth round-trips in {self.elapsed_s:.2f} s: "
            f"{self.per_second:.1f} auth/s",
            f"replies: {self.granted} granted, {self.denied} denied, {self.unexpected} "
            f"unexpected, {self.malformed} malformed; {self.errors} errors, "
            f"{self.timeouts} timeouts",
            f"latency ms: p50 {lat['p50']:.2f}  p90 {lat['p90']:.2f}  p99 {lat['p99']:.2f}  "
            f"max {lat['max']:.2f}  (mean {lat['mean']:.2f})",
        ]
        if self.first_error:
            out.append(f"first error: {self.first_error}")
        if self.connect_retries:
            out.append(f"note: {self.connect_retries} connects found the listen backlog full "
                       "and were retried (latency includes the wait)")
        if self.unreported_workers:
            out.append(f"note: {self.unreported_workers} generator process(es) did not hand "
                       "in their figures after the stop; they are not counted")
        return out


# --------------------------------------------------------------------------- the worker


@dataclass
class _Slot:
    sock: socket.socket
    request: Request
    t0: float
    pending: bytes


def _classify(data: bytes) -> str:
    body = data[:-1] if data.endswith(b"\n") else data
    if body == b"0":
        return "grant"
    if body.isdigit() and body.strip(b"0"):
        return "deny"
    return "malformed"


def _worker(path: str, requests: list[Request], conns: int, quota: int | None,
            start_at: float, seconds: float, timeout: float, half_close: bool,
            offset: int, publish: Callable[[WorkerStats], None] | None = None,
            should_stop: Callable[[], bool] | None = None) -> WorkerStats:
    """Keep ``conns`` round-trips in flight until the time or the quota runs out, or
    ``should_stop()`` says so (asked at every sweep, after ``publish(stats)``).

    Kept lean on purpose (it is the generator's hot loop): raw ``epoll``, one dict
    from fd to slot, and closing a socket drops it from the epoll set by itself. Round
    trips still in flight when it stops are dropped (closed, not counted).
    """
    stats = WorkerStats()
    poller = select.epoll()
    slots: dict[int, _Slot] = {}
    latencies = stats.latencies
    launched = 0
    monotonic = time.monotonic
    stats.started = start_at
    deadline = start_at + seconds
    limit = quota if quota is not None else -1

    def error(text: str) -> None:
        stats.errors += 1
        if not stats.first_error:
            stats.first_error = text

    def finish(slot: _Slot) -> None:
        del slots[slot.sock.fileno()]
        slot.sock.close()  # also leaves the epoll set

    def count_retry() -> None:
        stats.connect_retries += 1

    def launch() -> None:
        nonlocal launched
        request = requests[(offset + launched) % len(requests)]
        launched += 1
        t0 = monotonic()
        try:  # a full listen backlog (EAGAIN) is waited out, up to the timeout
            sock = retry_while_backlog_full(lambda: connect_unix(path, None), t0 + timeout,
                                            max_pause=BACKLOG_PAUSE_S, on_retry=count_retry)
        except BlockingIOError:
            stats.timeouts += 1
            return
        except OSError as exc:
            error(f"connect: {errno.errorcode.get(exc.errno or 0, '?')} {exc.strerror}")
            return
        slot = _Slot(sock, request, t0, request.payload)
        slots[sock.fileno()] = slot
        write(slot, first=True)

    def write(slot: _Slot, first: bool = False) -> None:
        try:
            n = slot.sock.send(slot.pending)
        except BlockingIOError:
            n = 0
        except OSError as exc:
            error(f"send: {errno.errorcode.get(exc.errno or 0, '?')}")
            finish(slot)
            return
        slot.pending = slot.pending[n:]
        fd = slot.sock.fileno()
        if slot.pending:
            if first:
                poller.register(fd, select.EPOLLOUT)
            else:
                poller.modify(fd, select.EPOLLOUT)
            return
        if half_close:
            with contextlib.suppress(OSError):
                slot.sock.shutdown(socket.SHUT_WR)
        if first:
            poller.register(fd, select.EPOLLIN)
        else:
            poller.modify(fd, select.EPOLLIN)

    def read(slot: _Slot) -> None:
        try:
            data = slot.sock.recv(REPLY_READ)
        except BlockingIOError:
            return
        except OSError as exc:
            error(f"recv: {errno.errorcode.get(exc.errno or 0, '?')}")
            finish(slot)
            return
        end = monotonic()
        if not data:
            error("the server closed without a reply")
            finish(slot)
            return
        latencies.append((end - slot.t0) * 1000)
        if data == b"0" or data == b"0\n":
            stats.granted += 1
            if not slot.request.expect_grant:
                stats.unexpected += 1
        elif _classify(data) == "deny":
            stats.denied += 1
            if slot.request.expect_grant:
                stats.unexpected += 1
        else:
            stats.malformed += 1
        finish(slot)

    try:
        now = monotonic()
        if start_at > now:
            time.sleep(start_at - now)
        next_sweep = monotonic() + SWEEP_S
        while True:
            while len(slots) < conns and launched != limit and monotonic() < deadline:
                launch()
            if slots:
                for fd, mask in poller.poll(SWEEP_S):
                    slot = slots.get(fd)
                    if slot is None:
                        continue
                    if mask & select.EPOLLOUT:
                        write(slot)
                    else:
                        read(slot)
            elif launched == limit or monotonic() >= deadline:
                break
            now = monotonic()
            if now >= next_sweep:  # give up on round-trips older than the timeout
                next_sweep = now + SWEEP_S
                for slot in [s for s in slots.values() if now - s.t0 > timeout]:
                    stats.timeouts += 1
                    finish(slot)
                if publish is not None:
                    publish(stats)
                if should_stop is not None and should_stop():
                    stats.stopped = True
                    break
    except KeyboardInterrupt:  # Ctrl-C with no guard to defer it: what finished counts
        stats.stopped = True
    finally:
        for slot in list(slots.values()):  # in flight: dropped
            slot.sock.close()
        slots.clear()
        poller.close()
        stats.ended = monotonic()
    return stats


def _stop_asked() -> bool:
    """Whether Ctrl-C or SIGTERM came (under the guard, deferred by ``shielded``)."""
    return interrupts.received() is not None


def _child(queue: Any, go: Any, start_at: Any, halt: Any, counts: Any, index: int,
           parent: int, args: tuple[Any, ...]) -> None:
    """A worker process: say ready, wait for the common start time, measure, report.

    Ctrl-C or SIGTERM (a terminal sends Ctrl-C to every process of its foreground
    group), the parent's stop flag, or the parent gone: it stops at its next sweep and
    still reports what finished.
    """
    signalled: list[int] = []

    def on_signal(signum: int, frame: Any) -> None:
        signalled.append(signum)

    with contextlib.suppress(ValueError):  # the parent's handlers were inherited
        for sig in interrupts.SIGNALS:
            signal.signal(sig, on_signal)
    base = index * len(_COUNTS)

    def publish(stats: WorkerStats) -> None:
        counts[base:base + len(_COUNTS)] = stats.counts()

    def should_stop() -> bool:
        return bool(signalled) or bool(halt.value) or os.getppid() != parent

    try:
        queue.put(("ready", index, os.getpid()))
        if not go.wait(READY_WAIT_S + STOP_WAIT_S):  # the parent went away before the start
            return
        path, requests, conns, quota, seconds, timeout, half_close, offset = args
        stats = _worker(path, requests, conns, quota, start_at.value, seconds, timeout,
                        half_close, offset, publish, should_stop)
        queue.put(("done", index, stats))
    except BaseException as exc:  # reported by the parent
        queue.put(("failed", index, f"{type(exc).__name__}: {exc}"))


def default_workers() -> int:
    """One generator process per two CPUs: the server under test needs the others.

    One process keeps up with the fastest server measured here (the null server,
    about 50k round-trips/s); see ``benchmarks/bench_servers.py``.
    """
    return max(1, (os.cpu_count() or 1) // 2)


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def _in_process(path: str, requests: list[Request], conns: int, quota: int | None,
                seconds: float, timeout: float, half_close: bool,
                on_progress: OnProgress | None, every: float,
                ) -> tuple[list[WorkerStats], interrupts.Interrupted | None]:
    """One worker in this process; a Ctrl-C stops it at its next sweep."""
    start = time.monotonic()
    publish = None
    if on_progress is not None and every > 0:
        next_at = start + every

        def publish(stats: WorkerStats) -> None:
            nonlocal next_at
            now = time.monotonic()
            if now >= next_at:
                while next_at <= now:
                    next_at += every
                on_progress(Progress(now - start, *stats.counts()))

    stats: WorkerStats | None = None
    try:
        with interrupts.shielded():  # the signal is seen at the next sweep, not mid-count
            stats = _worker(path, requests, conns, quota, start, seconds, timeout,
                            half_close, 0, publish, _stop_asked)
    except KeyboardInterrupt as exc:  # raised by the shield once the worker returned
        if stats is None:
            raise
        return [stats], interrupts.as_interrupted(exc)
    if stats.stopped:  # an unguarded Ctrl-C, caught in the loop
        return [stats], interrupts.Interrupted(interrupts.received() or signal.SIGINT)
    return [stats], None


def _in_processes(path: str, requests: list[Request], conns: list[int],
                  quotas: list[int | None], seconds: float, timeout: float,
                  half_close: bool, on_progress: OnProgress | None, every: float,
                  ) -> tuple[list[WorkerStats], int, interrupts.Interrupted | None]:
    """Forked workers started together; their figures, how many never came, the stop.

    Every wait is bounded; each worker is joined (killed if it will not exit) before
    this returns, on every path.
    """
    n = len(conns)
    ctx = multiprocessing.get_context("fork")
    start_at = ctx.RawValue("d", 0.0)
    halt = ctx.RawValue("b", 0)
    counts = ctx.RawArray("q", n * len(_COUNTS))
    go = ctx.Event()
    queue = ctx.Queue()
    parent = os.getpid()
    procs = [
        ctx.Process(target=_child, args=(queue, go, start_at, halt, counts, i, parent, (
            path, requests, conns[i], quotas[i], seconds, timeout, half_close, i * 7919)),
            daemon=True)
        for i in range(n)
    ]
    done: dict[int, WorkerStats] = {}
    halted = False  # told to stop by a signal

    def receive(until: float) -> tuple[str, int, Any] | None:
        """The next message, or None at ``until`` (or after a short wait, for progress)."""
        left = until - time.monotonic()
        if left <= 0:
            return None
        try:
            message: tuple[str, int, Any] = queue.get(timeout=min(left, 0.25))
        except queues.Empty:
            return None
        if message[0] == "failed":
            raise RuntimeError(f"load generator worker failed: {message[2]}")
        return message

    def stop_and_collect() -> None:
        """Tell the workers to stop; take the figures that come within the bound."""
        nonlocal halted
        halted = True
        halt.value = 1
        go.set()  # workers not started yet start and stop at once
        until = time.monotonic() + STOP_WAIT_S
        while len(done) < n and time.monotonic() < until:
            message = receive(until)
            if message is not None and message[0] == "done":
                done[message[1]] = message[2]

    def progress() -> Progress:
        k = len(_COUNTS)
        totals = [sum(counts[i * k + j] for i in range(n)) for j in range(k)]
        return Progress(time.monotonic() - start_at.value, *totals)

    def drive() -> None:
        """Start the workers, then take their figures (progress lines meanwhile); on a
        signal (deferred by the shield) stop them and take what they finished."""
        for p in procs:
            p.start()
        ready = 0
        until = time.monotonic() + READY_WAIT_S
        while ready < n:
            if _stop_asked():
                return stop_and_collect()
            message = receive(until)
            if message is not None:
                ready += 1
            elif time.monotonic() >= until:
                raise RuntimeError(f"the load generator's workers did not start within "
                                   f"{READY_WAIT_S:g} s")
        start_at.value = time.monotonic() + 0.05
        go.set()
        until = start_at.value + seconds + timeout + 30
        next_progress = start_at.value + every if on_progress is not None and every > 0 \
            else math.inf
        while len(done) < n:
            if _stop_asked():
                return stop_and_collect()
            message = receive(min(until, next_progress))
            if message is not None and message[0] == "done":
                done[message[1]] = message[2]
            now = time.monotonic()
            if now >= next_progress and on_progress is not None:
                while next_progress <= now:
                    next_progress += every
                on_progress(progress())
            if now >= until and len(done) < n:
                raise RuntimeError(f"{n - len(done)} load generator worker(s) did not hand "
                                   f"in their figures within {until - start_at.value:g} s")
        return None

    stop: interrupts.Interrupted | None = None
    try:
        try:
            with interrupts.shielded():  # a signal is seen between two waits, not mid-fork
                drive()
        except KeyboardInterrupt as exc:  # raised by the shield, or (unguarded) anywhere
            stop = interrupts.as_interrupted(exc)
            if not halted:
                stop_and_collect()
        if halted and stop is None:  # the signal was seen, but raised elsewhere before
            stop = interrupts.Interrupted(interrupts.received() or signal.SIGINT)
    finally:
        halt.value = 1  # whatever happened, no worker goes on
        go.set()
        until = time.monotonic() + EXIT_WAIT_S
        for p in procs:
            if p.pid is None:  # never started
                continue
            p.join(max(0.0, until - time.monotonic()))
            if p.is_alive():
                p.kill()
                p.join(1.0)
        queue.close()
        queue.cancel_join_thread()
    return [done[i] for i in sorted(done)], n - len(done), stop


def run(
    path: Path | str,
    requests: list[Request],
    *,
    concurrency: int = 4,
    seconds: float = 10.0,
    count: int | None = None,
    workers: int | None = None,
    timeout: float = 5.0,
    half_close: bool = False,
    mix: str = "",
    on_progress: OnProgress | None = None,
    progress_every: float = 0.0,
) -> BenchResult:
    """Run the benchmark; stops launching at ``seconds`` or after ``count`` round-trips.

    ``on_progress`` gets the figures so far every ``progress_every`` seconds (from this
    process, in its main thread). On Ctrl-C or SIGTERM, raises
    :class:`~pamconform.core.interrupts.Interrupted` whose ``partial`` is the
    :class:`BenchResult` of the round trips that finished (``interrupted`` set).
    """
    if concurrency < 1 or seconds <= 0 or (count is not None and count < 1):
        raise ValueError("concurrency and count must be >= 1, seconds > 0")
    if not requests:
        raise ValueError("no requests to send")
    nworkers = max(1, min(concurrency, workers or default_workers()))
    if count is not None:
        nworkers = min(nworkers, count)
    conns = _split(concurrency, nworkers)
    quotas: list[int | None] = list(_split(count, nworkers)) if count else [None] * nworkers
    path = str(path)
    unreported = 0
    if nworkers == 1:
        stats, stop = _in_process(path, requests, conns[0], quotas[0], seconds, timeout,
                                  half_close, on_progress, progress_every)
    else:
        stats, unreported, stop = _in_processes(path, requests, conns, quotas, seconds,
                                                timeout, half_close, on_progress,
                                                progress_every)
    latencies = sorted(x for s in stats for x in s.latencies)
    start = min((s.started for s in stats), default=0.0)
    end = max((s.ended for s in stats), default=start)
    result = BenchResult(
        socket=path, concurrency=concurrency, workers=nworkers, mix=mix,
        seconds_limit=seconds, count_limit=count, elapsed_s=max(0.0, end - start),
        completed=len(latencies),
        granted=sum(s.granted for s in stats), denied=sum(s.denied for s in stats),
        unexpected=sum(s.unexpected for s in stats), malformed=sum(s.malformed for s in stats),
        errors=sum(s.errors for s in stats), timeouts=sum(s.timeouts for s in stats),
        connect_retries=sum(s.connect_retries for s in stats),
        first_error=next((s.first_error for s in stats if s.first_error), ""),
        latencies_ms=latencies, unreported_workers=unreported,
    )
    if stop is not None:
        result.interrupted = stop.signame
        stop.partial = result
        raise stop
    return result
