"""The pytest plugin: the suites run as plain pytest items.

    pytest suites/redirector_server --server /run/auth.sock --credentials alice:secret

Each case becomes an item named by its id; FAIL fails the item, SKIPPED skips it,
NON-STRICT passes with a warning (fails with ``--conformance-strict``).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest

from pamconform.cli.preflight import check_socket as preflight
from pamconform.core import loader
from pamconform.core.context import ServerTarget
from pamconform.core.credentials import parse_credentials
from pamconform.core.errors import UsageError
from pamconform.core.options import SECONDS
from pamconform.core.registry import Case, all_cases
from pamconform.core.runner import CaseResult, run_case
from pamconform.core.verdicts import Verdict


class NonStrictWarning(UserWarning):
    """A SHOULD-level requirement was not met."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("pamconform", "pamconform conformance target")
    group.addoption("--server", type=Path, metavar="SOCKET",
                    help="auth server socket to check with the suites")
    group.addoption("--credentials", action="append", default=[], metavar="USER:PASSWORD",
                    help="a valid login the server knows (repeatable)")
    group.addoption("--protocol", default="redirector", help="wire protocol (redirector)")
    group.addoption("--conformance-strict", action="store_true",
                    help="NON-STRICT verdicts fail")
    group.addoption("--reply-timeout", type=SECONDS, default=5.0, metavar="SECONDS")
    group.addoption("--idle-limit", type=SECONDS, default=10.0, metavar="SECONDS")


def pytest_configure(config: pytest.Config) -> None:
    """Check the target once, up front: a bad --server is a usage error (exit 4)."""
    if config.getoption("--server", None) is not None:
        _target(config)


def _target(config: pytest.Config) -> ServerTarget | None:
    cached = config.stash.get(_TARGET_KEY, None)
    if cached is not None:
        return cached
    sock = config.getoption("--server")
    if sock is None:
        return None
    try:
        creds = parse_credentials(config.getoption("--credentials"))
        if not creds:
            raise UsageError("--server needs at least one --credentials USER:PASSWORD")
        timeout = config.getoption("--reply-timeout")
        preflight(sock, timeout)
    except UsageError as exc:
        raise pytest.UsageError(str(exc)) from None
    target = ServerTarget(str(sock), sock, config.getoption("--protocol"), creds, timeout,
                          config.getoption("--idle-limit"))
    config.stash[_TARGET_KEY] = target
    return target


_TARGET_KEY = pytest.StashKey[ServerTarget]()


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if (
        file_path.suffix == ".py"
        and "suites" in file_path.parts
        and not file_path.name.startswith(("_", "test_", "conftest"))
    ):
        return SuiteFile.from_parent(parent, path=file_path)
    return None


class SuiteFile(pytest.File):
    """A suite file: its registered cases become items."""

    def collect(self) -> Any:
        module = loader.load_file(self.path)
        suite = module.__name__.split(".", 1)[1]
        for case in all_cases():
            if case.suite == suite:
                yield CaseItem.from_parent(self, name=case.id, case=case)


class CaseFailed(Exception):
    """A case's FAIL or ERROR verdict."""


class CaseItem(pytest.Item):
    """One conformance case run as a pytest item."""

    def __init__(self, *, case: Case, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case = case
        self.result: CaseResult | None = None

    def runtest(self) -> None:
        target = _target(self.config)
        if target is None:
            pytest.skip("no target: pass --server SOCKET --credentials USER:PASSWORD")
        if target.protocol != self.case.protocol:
            pytest.skip(f"case is for the {self.case.protocol} protocol")
        strict = self.config.getoption("--conformance-strict")
        self.result = result = run_case(self.case, target, strict=strict)
        self.user_properties.append(("verdict", str(result.verdict)))
        self.user_properties.append(("rule", self.case.rule))
        if result.verdict is Verdict.SKIPPED:
            pytest.skip(result.message)
        if result.verdict in (Verdict.FAIL, Verdict.ERROR):
            raise CaseFailed(result.message)
        if result.verdict is Verdict.NON_STRICT:
            warnings.warn(f"{self.case.id}: {result.message}", NonStrictWarning, stacklevel=1)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, CaseFailed) and self.result is not None:
            r = self.result
            lines = [
                f"{r.verdict} {self.case.id} [{self.case.rule} {self.case.severity}]",
                f"requirement: {self.case.requirement}",
                f"{r.message}",
            ]
            lines += [f"  note: {n}" for n in r.evidence.get("notes", [])]
            for e in r.evidence.get("wire", [])[:30]:
                lines.append(f"  {e['t_ms']:9.1f} ms #{e['conn']} {e['event']} {e.get('data', '')}")
            return "\n".join(lines)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"{self.case.id} [{self.case.rule}]"
