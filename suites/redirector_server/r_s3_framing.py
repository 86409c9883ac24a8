"""R-S3: frame by reading until the second newline, however the bytes are split."""

from functools import partial

from pamconform.core.registry import case_factory
from pamconform.core.verdicts import Severity
from pamconform.protocols.redirector.client import request
from pamconform.protocols.redirector.server_steps import ask, expect_grant, target

case = case_factory(protocol="redirector", kind="server")


def _whole(user, password):
    return [request(user, password)]


def _per_field(user, password):
    return [user + b"\n", password + b"\n"]


def _byte_at_a_time(user, password):
    data = request(user, password)
    return [data[i : i + 1] for i in range(len(data))]


def _mid_field(user, password):
    data = request(user, password)
    cut1, cut2 = max(1, len(user) // 2), len(user) + 1 + max(1, len(password) // 2)
    return [data[:cut1], data[cut1:cut2], data[cut2:]]


def _newline_split(user, password):
    return [user, b"\n" + password, b"\n"]


SPLITS = [
    ("whole-message", _whole, 0.0, "the whole request in one write"),
    ("per-field", _per_field, 0.2, "one write per line, 200 ms apart"),
    ("byte-at-a-time", _byte_at_a_time, 0.02, "one byte per write, 20 ms apart"),
    ("split-mid-field", _mid_field, 0.2, "writes cut in the middle of each field, 200 ms apart"),
    ("split-at-newline", _newline_split, 0.2, "each newline at the start of the next write"),
]


def _framed(split, pause, ctx):
    t = target(ctx)
    chunks = split(t.user, t.password)
    ctx.note(f"{len(chunks)} writes, {pause * 1000:.0f} ms apart")
    timeout = t.timeout + pause * len(chunks)
    expect_grant(ctx, ask(ctx, chunks, pause=pause, timeout=timeout), "a valid request")


for _name, _split, _pause, _how in SPLITS:
    case(
        f"redir.server.frame-{_name}",
        rule="R-S3",
        severity=Severity.MUST,
        title=f"Framing: {_how}",
        requirement=f"The server grants a valid request sent as {_how}.",
    )(partial(_framed, _split, _pause))
