"""What the server suite promises a server with a lock-out (docs/server.md#lock-outs).

One case at a time or under ``--jobs``, the first login's user never gets more than 4
wrong passwords in a row (a lock-out after 5 consecutive failures that a grant resets
passes), the concurrent
burst sends it 3, and the long failure run's stream goes to the last login. A recording
server counts, per user, the wrong passwords since the last grant, as such a lock-out
would.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from pamconform.core import loader
from pamconform.core.context import ServerTarget
from pamconform.core.registry import Case, all_cases
from pamconform.core.runner import run_target
from pamconform.core.verdicts import Verdict

PAIRS = [(b"alice", b"alice-auth-pw"), (b"bob", b"bob-auth-pw")]
#: The allowance docs/server.md states: a lock-out after 5 failures in a row passes.
MOST_IN_A_ROW = 4
FIELD_LIMIT = 8192


class Streaks:
    """Per known user: failures since the last grant, and the longest such run."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now: dict[bytes, int] = {}
        self.longest: dict[bytes, int] = {}
        self.wrong: dict[bytes, int] = {}

    def handler(self, conn: socket.socket) -> None:
        data = b""
        while data.count(b"\n") < 2:
            chunk = conn.recv(4096)
            if not chunk or len(data) > FIELD_LIMIT:  # closed without a reply
                if len(data) > FIELD_LIMIT and b"\n" in data:  # an over-long password
                    self.count(data.split(b"\n", 1)[0], False)
                return
            data += chunk
        user, password, rest = data.split(b"\n", 2)
        granted = (user, password) in PAIRS and not rest
        self.count(user, granted)
        conn.sendall(b"0" if granted else b"1")

    def count(self, user: bytes, granted: bool) -> None:
        with self.lock:
            if user in dict(PAIRS):
                run = 0 if granted else self.now.get(user, 0) + 1
                self.now[user] = run
                self.longest[user] = max(self.longest.get(user, 0), run)
                self.wrong[user] = self.wrong.get(user, 0) + (not granted)


@pytest.fixture(scope="module")
def cases() -> list[Case]:
    loader.load_suite("redirector_server")
    return all_cases(protocol="redirector", kind="server")


def _run(scripted: Callable[..., object], chosen: list[Case], jobs: int = 1) -> Streaks:
    streaks = Streaks()
    server = scripted(streaks.handler)
    target = ServerTarget("recording", server.path, "redirector", PAIRS,  # type: ignore[attr-defined]
                          timeout=3.0, idle_limit=1.0)
    result = run_target(chosen, target, kind="server", protocol="redirector", jobs=jobs)
    failed = {r.case.id: r.message for r in result.results if r.verdict is Verdict.FAIL}
    assert failed == {} or set(failed) <= {"redir.server.socket-permissions",
                                            "redir.server.peer-credentials"}, failed
    return streaks


@pytest.mark.parametrize("jobs", [1, 8])
def test_the_first_users_failures_stay_short_also_under_jobs(
        scripted, cases: list[Case], jobs: int) -> None:  # type: ignore[no-untyped-def]
    """Cases that send the first login wrong passwords hold ``first-login``: under
    ``--jobs`` they still run one at a time (their wrong passwords interleaved tripped a
    lock-out of 5 in a row)."""
    chosen = [c for c in cases if "idle-clients" not in c.exclusive
              and c.id not in ("redir.server.endurance", "redir.server.concurrent-clients")]
    streaks = _run(scripted, chosen, jobs)
    assert streaks.wrong.get(b"alice", 0) > 20  # the cases did send it wrong passwords
    assert streaks.longest[b"alice"] <= MOST_IN_A_ROW, streaks.longest
    assert streaks.longest[b"bob"] > MOST_IN_A_ROW  # the long failure run's stream


def test_the_concurrent_burst_sends_the_user_three_wrong_passwords(
        scripted, cases: list[Case]) -> None:  # type: ignore[no-untyped-def]
    chosen = [c for c in cases if c.id == "redir.server.concurrent-clients"]
    streaks = _run(scripted, chosen)
    assert streaks.wrong[b"alice"] == 3, streaks.wrong


@pytest.mark.parametrize(("checked", "hint"), [
    (True, "granted when the run started"), (False, "README polarity")])
def test_a_refused_valid_login_hints_at_a_lock_out_once_the_logins_were_checked(
        checked: bool, hint: str) -> None:
    """After the up-front login check granted every login, a later ``1`` for one is the
    server's doing (a lock-out?), not an inverted polarity: that would have stopped the
    run before any case."""
    from pamconform.core.context import CaseContext
    from pamconform.core.outcome import Fail
    from pamconform.protocols.redirector.client import Reply
    from pamconform.protocols.redirector.server_steps import expect_grant

    target = ServerTarget("t", Path("/nonexistent"), "redirector", PAIRS,
                          logins_checked=checked)
    with pytest.raises(Fail) as failed:
        expect_grant(CaseContext(target), Reply(data=b"1", eof=True), "a valid login")
    assert hint in str(failed.value)
    assert ("README polarity" in str(failed.value)) is not checked
