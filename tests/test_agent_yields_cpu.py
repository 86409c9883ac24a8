"""A valgrind run yields the CPU to what runs beside it (logins, servers): the agent lowers
its priority, and its session's autogroup's, since each run is a session of its own."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest
from agent_module import load_agent

AGENT = load_agent("pam_agent_yield")


def test_a_run_that_yields_has_a_lower_priority_and_one_that_does_not_keeps_its_own(
        monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []
    real = AGENT._yield_cpu

    def spy(pid: int) -> None:
        real(pid)
        seen.append(os.getpriority(os.PRIO_PROCESS, pid))

    monkeypatch.setattr(AGENT, "_yield_cpu", spy)
    agent = AGENT.Agent("/nonexistent", None)
    base = os.getpriority(os.PRIO_PROCESS, 0)
    agent._run([sys.executable, "-c", "import time; time.sleep(0.2)"], dict(os.environ), 10.0,
               None, yield_cpu=False)
    assert seen == []
    agent._run([sys.executable, "-c", "import time; time.sleep(0.2)"], dict(os.environ), 10.0,
               None, yield_cpu=True)
    assert seen == [max(base, min(19, AGENT.VALGRIND_NICE))]


def test_the_autogroup_of_a_yielding_run_is_lowered_where_the_kernel_has_them(
        tmp_path: Path) -> None:
    if not os.path.exists("/proc/self/autogroup"):
        pytest.skip("this kernel has no autogroups")
    out = tmp_path / "nice"
    code = (f"import time; time.sleep(0.3)\n"
            f"open({str(out)!r}, 'w').write(open('/proc/self/autogroup').read())")
    agent = AGENT.Agent("/nonexistent", None)
    agent._run([sys.executable, "-c", code], dict(os.environ), 10.0, None, yield_cpu=True)
    assert out.read_text().split()[-1] == str(AGENT.VALGRIND_NICE)
    agent._run([sys.executable, "-c", code], dict(os.environ), 10.0, None, yield_cpu=False)
    assert out.read_text().split()[-1] == "0"


def test_valgrind_requests_yield_and_plain_ones_do_not(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bool] = []

    def fake_run(self: Any, argv: list[str], env: dict[str, str], timeout: float,
                 busy_limit: float | None = None, yield_cpu: bool = False) -> dict[str, Any]:
        calls.append(yield_cpu)
        return {"status": "ran", "result": None}

    monkeypatch.setattr(AGENT.Agent, "_run", fake_run)
    agent = AGENT.Agent("/bin/true", "/bin/true")
    for valgrind in (False, True):
        agent.attempt({"id": 1, "argv": ["--service", "x"], "timeout": 1.0,
                       "valgrind": valgrind})
    assert calls == [False, True]
