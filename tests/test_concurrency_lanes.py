"""Direct-driver lanes: a case that does not hold the lab's server gets its own scenario
server, socket and service names, so such cases run at once without touching each other."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pytest

from pamconform.core.context import CaseContext
from pamconform.drivers import lanes as lanes_mod
from pamconform.drivers.direct import DirectDriver
from pamconform.drivers.direct_runner import LAB_SERVERS, ContainerRunner
from pamconform.drivers.lanes import LANE_SERVERS, Lanes
from pamconform.lab.module_target import SOCKET, ModuleSpec
from pamconform.protocols.redirector.direct_steps import direct, probe_service


@dataclass
class _Result:
    def check(self) -> _Result:
        return self


@dataclass
class _Box:
    commands: list[Any] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)

    def run(self, cmd: Any, *, timeout: float, args: Any = ()) -> _Result:
        self.commands.append(cmd)
        return _Result()

    def exec_argv(self, argv: list[str], **kw: Any) -> list[str]:
        return ["docker", "exec", "box", *argv]

    def put_file(self, path: str, data: bytes, mode: int) -> None:
        self.files[path] = data


@dataclass
class _Target:
    box: _Box
    spec: ModuleSpec
    name: str = "t"
    server_state: str = "none"
    hang_bound: float = 5.0


class _Proc:
    """Stands in for ScenarioProcess: records its argv and the scenarios set."""

    started: ClassVar[list[list[str]]] = []

    def __init__(self, argv: list[str]) -> None:
        self.argv = argv
        self.sets: list[str] = []
        _Proc.started.append(argv)

        class _P:
            @staticmethod
            def poll() -> None:
                return None

        self.proc = _P()

    def set(self, name: str, **args: Any) -> None:
        self.sets.append(name)

    def log(self, wait: float = 0.0) -> list[Any]:
        return []

    def stop(self) -> str:
        return ""


@pytest.fixture
def d(monkeypatch: pytest.MonkeyPatch) -> DirectDriver:
    monkeypatch.setattr(lanes_mod, "ScenarioProcess", _Proc)
    _Proc.started = []
    spec = ModuleSpec(Path("."), so="pam_redirector.so", args="{socket} timeout=3")
    target = _Target(_Box(), spec)
    return DirectDriver(target, runner=ContainerRunner(target))  # type: ignore[arg-type]


def _ctx(d: DirectDriver, *exclusive: str) -> CaseContext:
    return CaseContext(target=d.target, exclusive=tuple(exclusive))


def test_concurrent_threads_get_distinct_lanes_and_a_lane_is_reused() -> None:
    lanes = Lanes()
    seen: list[int] = []
    ready = threading.Barrier(3)

    def take() -> None:
        leave = lanes.enter()
        lane = lanes.current
        assert lane is not None
        seen.append(lane.n)
        ready.wait(5)  # all three hold a lane at once
        leave()

    threads = [threading.Thread(target=take) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert sorted(seen) == [1, 2, 3]
    leave = lanes.enter()
    assert lanes.current is not None and lanes.current.n in (1, 2, 3)  # reused, not a 4th
    leave()
    assert lanes.current is None


def test_a_case_without_the_lab_server_runs_in_its_own_lane(d: DirectDriver) -> None:
    ctx = _ctx(d)
    drv = direct(ctx)
    lane = drv.lanes.current
    assert lane is not None
    proc = drv.scenario("deny")
    service = probe_service(drv)
    assert service == f"pc-probe-l{lane.n}"
    text = d.target.box.files[f"/etc/pam.d/{service}"].decode()  # type: ignore[attr-defined]
    assert f"{lane.socket} timeout=3" in text and SOCKET not in text
    assert drv.socket == lane.socket
    # the lane's server runs through the link, so pkill of the lab's servers spares it
    (argv,) = _Proc.started
    assert f"{LANE_SERVERS}/scenario_server.py" in argv and lane.socket in argv
    assert not any(a.startswith(f"{LAB_SERVERS}/") for a in argv)
    assert ["ln", "-sfn", LAB_SERVERS, LANE_SERVERS] in d.target.box.commands  # type: ignore[attr-defined]
    assert proc.sets == ["deny"]  # type: ignore[attr-defined]
    # a name the case uses for a service it wrote in the lane maps to the lane's file
    drv.install_service("pc-probe-asan", "x")
    req = {"argv": ["--service", "pc-probe-asan", "--user", "alice"]}
    assert drv.lanes.rename(req)["argv"][1] == f"pc-probe-asan-l{lane.n}"
    assert drv.lanes.rename({"argv": ["--service", "sshd"]})["argv"][1] == "sshd"
    ctx.end()
    assert drv.lanes.current is None


def test_a_case_holding_the_lab_server_uses_the_labs_socket(d: DirectDriver,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    import pamconform.drivers.direct as direct_mod

    monkeypatch.setattr(direct_mod, "ScenarioProcess", _Proc)
    monkeypatch.setattr(ContainerRunner, "free_socket", lambda self: None)
    ctx = _ctx(d, "lab-server")
    drv = direct(ctx)
    assert drv.lanes.current is None
    drv.scenario("grant")
    service = probe_service(drv)
    assert service == "pc-probe"
    assert f"{SOCKET} timeout=3" in d.target.box.files["/etc/pam.d/pc-probe"].decode()  # type: ignore[attr-defined]
    (argv,) = _Proc.started
    assert f"{LAB_SERVERS}/scenario_server.py" in argv
