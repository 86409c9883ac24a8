"""The case registry: explicit stable ids, one spec line per case, no duplicates."""

import re
import sys
import time
from pathlib import Path

import pytest

from pamconform.core import loader
from pamconform.core.registry import Case, all_cases, register
from pamconform.core.verdicts import Severity


@pytest.fixture(scope="module")
def server_cases() -> list[Case]:
    loader.load_suite("redirector_server")
    return all_cases(protocol="redirector", kind="server")


def test_every_case_is_a_spec_line(server_cases: list[Case]) -> None:
    assert len(server_cases) >= 35
    for c in server_cases:
        assert c.id.startswith("redir.server.")
        assert re.fullmatch(r"R-S[1-7]", c.rule)
        assert isinstance(c.severity, Severity)
        assert c.title and c.requirement.endswith(".")


def test_every_rule_has_a_must_case(server_cases: list[Case]) -> None:
    musts = {c.rule for c in server_cases if c.severity is Severity.MUST}
    assert musts == {f"R-S{i}" for i in range(1, 8)}


def test_duplicate_id_from_another_suite_is_refused(server_cases: list[Case]) -> None:
    existing = server_cases[0]
    clone = Case(existing.id, "R-S1", Severity.MUST, "t", "r.", "redirector", "server",
                 lambda ctx: None, "elsewhere.file")
    with pytest.raises(ValueError, match="duplicate case id"):
        register(clone)


def test_bad_id_is_refused() -> None:
    with pytest.raises(ValueError, match="lower-case"):
        register(Case("Bad_Id", "R-S1", Severity.MUST, "t", "r.", "p", "k",
                      lambda ctx: None, "x"))


def test_loading_twice_registers_nothing_new(server_cases: list[Case]) -> None:
    loader.load_suite("redirector_server")
    assert len(all_cases(protocol="redirector", kind="server")) == len(server_cases)


def test_a_suite_file_loaded_from_two_threads_is_whole_in_both(tmp_path: Path) -> None:
    """A module is in sys.modules before its body has run: a second thread loading it at
    that moment got it half-run (its later cases missing) until loads were serialised."""
    import threading

    body = tmp_path / "slow_suite.py"
    body.write_text("import time\nFIRST = 1\ntime.sleep(0.3)\nLAST = 2\n")
    got: list[object] = []  # LAST as each thread saw it when its load returned
    threads = [threading.Thread(target=lambda: got.append(getattr(
        loader.import_path("pamconform_test_slow_suite", body), "LAST", None)))
        for _ in range(2)]
    try:
        for th in threads:
            th.start()
            time.sleep(0.05)
        for th in threads:
            th.join(5)
        assert got == [2, 2]
    finally:
        sys.modules.pop("pamconform_test_slow_suite", None)
