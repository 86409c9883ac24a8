"""The nslcd module target's twin container (docs/nslcd.md#N-M2) goes with the target,
unless the run keeps its containers; the lab test runs the N-M2 cases in a real one."""

from __future__ import annotations

from typing import Any

import pytest

from pamconform.protocols.nslcd.lab import NslcdLab
from pamconform.protocols.nslcd.module_target import LabModuleTarget


class _Box:
    def __init__(self, name: str, keep: bool) -> None:
        self.name, self.keep, self.removed = name, keep, False

    def remove(self) -> None:
        self.removed = True


class _Scenario:
    stopped = False

    def stop(self) -> None:
        self.stopped = True


@pytest.mark.parametrize("keep", [False, True])
def test_close_removes_the_twin_unless_the_run_keeps_its_containers(keep: bool) -> None:
    main_box, twin_box = _Box("main", keep), _Box("twin", keep)
    target = LabModuleTarget(NslcdLab(main_box))  # type: ignore[arg-type]
    twin = LabModuleTarget(NslcdLab(twin_box))  # type: ignore[arg-type]
    scenario: Any = _Scenario()
    twin.scenario_proc = scenario
    target.twin_target = twin
    target.close()
    assert twin_box.removed is not keep and scenario.stopped is not keep
    assert main_box.removed is False  # the target's own container is the session's

