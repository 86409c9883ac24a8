"""A slow attempt is not a hung one: the agent gives an attempt that is still using the CPU
at its timeout (valgrind on a loaded machine) up to its ``busy_limit``; one that waits is
hung at its timeout."""

from __future__ import annotations

import os
import sys
from typing import Any

from agent_module import load_agent

from pamconform.drivers.agent import VALGRIND_BUSY_FACTOR, attempt_limit, valgrind_limits

AGENT = load_agent("pam_agent_busy")
WAITS = "import time; time.sleep(30)"
SPINS = "import time\nend = time.monotonic() + {s}\nwhile time.monotonic() < end: pass"


def _run(code: str, timeout: float, busy_limit: float | None) -> dict[str, Any]:
    agent = AGENT.Agent("/nonexistent", None)
    report: dict[str, Any] = agent._run([sys.executable, "-c", code], dict(os.environ),
                                        timeout, busy_limit)
    return report


def test_a_process_that_waits_is_hung_at_its_timeout_whatever_its_busy_limit() -> None:
    # 2 s: an interpreter still starting at the timeout (a loaded host) would be busy
    report = _run(WAITS, 2.0, 20.0)
    assert report["status"] == "hung"
    assert "busy_at_timeout" not in report
    assert report["wall_ms"] < 8000  # its timeout and one look at its CPU, not 20 s


def test_a_busy_process_is_given_until_it_ends_within_its_busy_limit() -> None:
    report = _run(SPINS.format(s=2.0), 0.5, 20.0)
    assert report["status"] != "hung", report
    assert report["busy_at_timeout"] is True
    assert 1900 <= report["wall_ms"] < 15000


def test_a_process_busy_past_its_busy_limit_is_hung() -> None:
    report = _run(SPINS.format(s=60), 0.5, 2.0)
    assert report["status"] == "hung" and report["busy_at_timeout"] is True
    assert 2000 <= report["wall_ms"] < 10000


def test_without_a_busy_limit_a_busy_process_is_hung_at_its_timeout() -> None:
    report = _run(SPINS.format(s=60), 0.5, None)
    assert report["status"] == "hung" and "busy_at_timeout" not in report
    assert report["wall_ms"] < 5000


def test_the_harness_gives_a_busy_limit_to_valgrind_attempts_only() -> None:
    plain = {"argv": [], "timeout": 5.0, "valgrind": False}
    under = {"argv": [], "timeout": 30.0, "valgrind": True}
    assert valgrind_limits(plain) == plain and attempt_limit(plain) == 5.0
    assert valgrind_limits(under)["busy_limit"] == 30.0 * VALGRIND_BUSY_FACTOR
    assert attempt_limit(valgrind_limits(under)) == 30.0 * VALGRIND_BUSY_FACTOR
    assert AGENT._request_problem(dict(valgrind_limits(under), argv=["--service", "x"])) is None
