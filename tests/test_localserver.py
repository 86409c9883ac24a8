"""The local server's credentials file: written by the reference server's ``adduser``, once
per set of logins in a process, and private."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pamconform.lab import localserver
from pamconform.lab.localserver import write_credentials

LOGINS = [("carol", "carol-local-pw"), ("dave", "dave-local-pw")]


def test_the_same_logins_again_are_a_private_copy_without_adduser(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(localserver, "_WRITTEN", {})
    first, second = tmp_path / "one", tmp_path / "two"
    write_credentials(first, LOGINS)
    data = first.read_bytes()
    assert [line.split(b":")[0] for line in data.splitlines()] == [b"carol", b"dave"]
    assert b"carol-local-pw" not in data and b"scrypt$" in data

    def no_adduser(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("adduser ran again for the same logins")

    monkeypatch.setattr(subprocess, "run", no_adduser)
    write_credentials(second, LOGINS)
    assert second.read_bytes() == data
    assert stat.S_IMODE(second.stat().st_mode) == 0o600
    # other logins (one password differs) are hashed anew
    with pytest.raises(AssertionError, match="adduser ran again"):
        write_credentials(tmp_path / "three", [LOGINS[0], ("dave", "another-pw")])
    assert not any(str(k).find("local-pw") >= 0 for k in localserver._WRITTEN)
