"""The ASan variant of a lab module is built before the cases when memcheck cases will run
(``pamconform.lab.asan_build.build_before``), so they do not build it holding valgrind
slots; a failed build is left for the cases to report. No Docker: the build is faked."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from pamconform.core.interrupts import Interrupted
from pamconform.core.registry import Case
from pamconform.core.runner import TargetResult
from pamconform.core.verdicts import Severity
from pamconform.lab import asan_build, module_run
from pamconform.lab.module_target import ModuleSpec


def _case(cid: str, *exclusive: str) -> Case:
    return Case(cid, "R-M3", Severity.MUST, cid, "r.", "redirector", "module",
                lambda ctx: None, "s", tuple(exclusive))


class _Target:
    """Stands for a ModuleTarget: build_asan keeps its build on it."""


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    made: list[Any] = []

    def fake_build(target: Any) -> asan_build.AsanBuild:
        made.append(target)
        return asan_build.AsanBuild(module="/asan/pam_x.so", libasan="/lib/libasan.so.8")

    monkeypatch.setattr(asan_build, "_build", fake_build)
    return made


def test_built_once_before_memcheck_cases_and_kept(builds: list[Any]) -> None:
    target = _Target()
    asan_build.build_before(target, [_case("a", "lab-server"),  # type: ignore[arg-type]
                                     _case("m", "valgrind")])
    assert builds == [target]
    # the memcheck cases then find it built
    assert asan_build.build_asan(target).module == "/asan/pam_x.so"  # type: ignore[arg-type]
    assert builds == [target]


def test_not_built_without_a_valgrind_case(builds: list[Any]) -> None:
    asan_build.build_before(_Target(), [_case("a"), _case("b", "timing")])  # type: ignore[arg-type]
    assert builds == []


def test_a_failed_build_is_left_to_the_cases(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def broken(target: Any) -> asan_build.AsanBuild:
        calls.append(1)
        raise RuntimeError("put_archive failed")

    monkeypatch.setattr(asan_build, "_build", broken)
    target = _Target()
    asan_build.build_before(target, [_case("m", "valgrind")])  # type: ignore[arg-type]
    # nothing was kept: the first memcheck case builds again and reports the error
    with pytest.raises(RuntimeError, match="put_archive"):
        asan_build.build_asan(target)  # type: ignore[arg-type]
    assert len(calls) == 2


def test_ctrl_c_during_the_build_is_not_swallowed(monkeypatch: pytest.MonkeyPatch) -> None:
    def stopped(target: Any) -> asan_build.AsanBuild:
        raise Interrupted()

    monkeypatch.setattr(asan_build, "_build", stopped)
    with pytest.raises(Interrupted):
        asan_build.build_before(_Target(), [_case("m", "valgrind")])  # type: ignore[arg-type]


def test_run_module_builds_it_before_running_the_cases(monkeypatch: pytest.MonkeyPatch,
                                                       builds: list[Any]) -> None:
    order: list[str] = []
    image = SimpleNamespace(tags=["pamconform/lab:test"])
    target = SimpleNamespace(box=SimpleNamespace(container=SimpleNamespace(image=image)),
                             stacks=dict, lab_checks={})

    @contextmanager
    def fake_lab(spec: Any, **kwargs: Any) -> Iterator[Any]:
        yield target

    def fake_run_target(cases: list[Case], t: Any, **kwargs: Any) -> TargetResult:
        order.append(f"cases run, {len(builds)} ASan build(s) before")
        return TargetResult(name="x", kind="module", protocol="redirector")

    monkeypatch.setattr(module_run, "module_lab", fake_lab)
    monkeypatch.setattr(module_run, "lab_versions", lambda box, distro: dict.fromkeys(
        ("debian_version", "linux_pam", "openssh"), "1"))
    monkeypatch.setattr(module_run, "run_target", fake_run_target)
    result = module_run.run_module(ModuleSpec(Path("/src")), [_case("m", "valgrind")],
                                   name="x")
    assert order == ["cases run, 1 ASan build(s) before"] and builds == [target]
    assert result.info["image"] == "pamconform/lab:test"
