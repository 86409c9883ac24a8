"""Load generator: auth round-trips per second and latency percentiles over a UNIX socket.

Each round-trip does what the PAM module does: connect, write ``user\\npassword\\n``,
read the reply (one read, as the module does), close. Latency runs from ``connect`` to
that first reply byte.

To keep the generator out of the way, connections are driven by non-blocking sockets
on an ``epoll`` loop (no thread per connection), spread over worker processes (by
default one per two CPUs, leaving the rest to the server; at most one per connection),
which start together once all have forked. ``benchmarks/bench_servers.py`` measures
it against a plain C client loop.

    >>> percentile([1.0, 2.0, 3.0, 4.0], 50)
    2.0
"""

from __future__ import annotations

import contextlib
import errno
import math
import multiprocessing
import os
import select
import socket
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pamconform.core.wire import BACKLOG_PAUSE_S, connect_unix, retry_while_backlog_full

MIXES = ("grant", "deny", "mixed")
#: Appended to a valid password to make a wrong one.
WRONG_SUFFIX = b"-pc-bench-wrong"
#: Bytes read for the reply (the original module reads at most 4).
REPLY_READ = 64


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
            offset: int) -> WorkerStats:
    """Keep ``conns`` round-trips in flight until the time or the quota runs out.

    Kept lean on purpose (it is the generator's hot loop): raw ``epoll``, one dict
    from fd to slot, and closing a socket drops it from the epoll set by itself.
    """
    stats = WorkerStats()
    poller = select.epoll()
    slots: dict[int, _Slot] = {}
    latencies = stats.latencies
    launched = 0
    monotonic = time.monotonic
    now = monotonic()
    if start_at > now:
        time.sleep(start_at - now)
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

    next_sweep = monotonic() + 0.1
    while True:
        while len(slots) < conns and launched != limit and monotonic() < deadline:
            launch()
        if not slots:
            if launched == limit or monotonic() >= deadline:
                break
            continue
        for fd, mask in poller.poll(0.1):
            slot = slots.get(fd)
            if slot is None:
                continue
            if mask & select.EPOLLOUT:
                write(slot)
            else:
                read(slot)
        now = monotonic()
        if now >= next_sweep:  # give up on round-trips older than the timeout
            next_sweep = now + 0.1
            for slot in [s for s in slots.values() if now - s.t0 > timeout]:
                stats.timeouts += 1
                finish(slot)
    poller.close()
    stats.ended = monotonic()
    return stats


def _child(queue: Any, go: Any, start_at: Any, args: tuple[Any, ...]) -> None:
    """A worker process: say ready, wait for the common start time, measure, report."""
    queue.put(("ready", os.getpid()))
    go.wait()
    path, requests, conns, quota, seconds, timeout, half_close, offset = args
    try:
        stats = _worker(path, requests, conns, quota, start_at.value, seconds, timeout,
                        half_close, offset)
        queue.put(("done", stats))
    except BaseException as exc:  # reported by the parent
        queue.put(("failed", f"{type(exc).__name__}: {exc}"))


def default_workers() -> int:
    """One generator process per two CPUs: the server under test needs the others.

    One process keeps up with the fastest server measured here (the null server,
    about 50k round-trips/s); see ``benchmarks/bench_servers.py``.
    """
    return max(1, (os.cpu_count() or 1) // 2)


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


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
) -> BenchResult:
    """Run the benchmark; stops launching at ``seconds`` or after ``count`` round-trips."""
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
    stats: list[WorkerStats] = []
    if nworkers == 1:
        stats.append(_worker(path, requests, conns[0], quotas[0], time.monotonic(), seconds,
                             timeout, half_close, 0))
    else:
        ctx = multiprocessing.get_context("fork")
        start_at = ctx.Value("d", 0.0)
        go = ctx.Event()
        queue = ctx.Queue()
        procs = [
            ctx.Process(target=_child, args=(queue, go, start_at, (
                path, requests, conns[i], quotas[i], seconds, timeout, half_close,
                i * 7919)), daemon=True)
            for i in range(nworkers)
        ]
        for p in procs:
            p.start()
        try:
            for _ in procs:
                queue.get(timeout=30)
            start_at.value = time.monotonic() + 0.05
            go.set()
            limit = seconds + timeout + 30
            for _ in procs:
                kind, value = queue.get(timeout=limit)
                if kind == "failed":
                    raise RuntimeError(f"load generator worker failed: {value}")
                stats.append(value)
        finally:
            for p in procs:
                p.join(5)
                if p.is_alive():
                    p.kill()
    latencies = sorted(x for s in stats for x in s.latencies)
    start = min(s.started for s in stats)
    end = max(s.ended for s in stats)
    return BenchResult(
        socket=path, concurrency=concurrency, workers=nworkers, mix=mix,
        seconds_limit=seconds, count_limit=count, elapsed_s=end - start,
        completed=len(latencies),
        granted=sum(s.granted for s in stats), denied=sum(s.denied for s in stats),
        unexpected=sum(s.unexpected for s in stats), malformed=sum(s.malformed for s in stats),
        errors=sum(s.errors for s in stats), timeouts=sum(s.timeouts for s in stats),
        connect_retries=sum(s.connect_retries for s in stats),
        first_error=next((s.first_error for s in stats if s.first_error), ""),
        latencies_ms=latencies,
    )
