"""The lab's command channel server (pamconform/lab/channel_server.py) keeps the exec
path's meaning: ``timeout -k 2 T`` exit codes, stdin, output caps, what a background
child holding the pipes gets, file writes and reads. Run here as the invoking user, on
the host, with no engine: the lab tests check it in a container beside ``docker exec``."""

from __future__ import annotations

import base64
import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pamconform.lab import channel_server

SERVER = Path(channel_server.__file__)


class Server:
    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, str(SERVER)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE)
        self.ids = 0

    def ask(self, req: dict[str, Any], wait_s: float = 15) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.ids += 1
        self.proc.stdin.write(json.dumps({**req, "id": self.ids}).encode() + b"\n")
        self.proc.stdin.flush()
        reply: dict[str, Any] = json.loads(self.line(wait_s))
        assert reply["id"] == self.ids
        return reply

    def line(self, wait_s: float = 15) -> bytes:
        """The next reply line, or a failure when none comes in ``wait_s``."""
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], wait_s)
        assert ready, f"no reply in {wait_s} s"
        return self.proc.stdout.readline()

    def run(self, argv: list[str], timeout: float = 10, **extra: Any) -> dict[str, Any]:
        reply = self.ask({"argv": argv, "timeout": timeout, **extra})
        for key in ("stdout", "stderr"):
            reply[key] = base64.b64decode(reply.get(key, ""))
        return reply


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    try:
        yield s
    finally:
        assert s.proc.stdin is not None
        s.proc.stdin.close()  # the server ends at the end of its stdin
        assert s.proc.wait(10) == 0


def test_exit_code_output_and_stdin(server: Server) -> None:
    r = server.run(["sh", "-c", "cat; echo oops >&2; exit 7"],
                   stdin=base64.b64encode(b"a\nb\n").decode())
    assert (r["rc"], r["stdout"], r["stderr"], r["timed_out"]) == (7, b"a\nb\n", b"oops\n",
                                                                  False)
    env = server.run(["sh", "-c", 'echo "$PC_X"; pwd'], env={"PC_X": "y"}, cwd="/")
    assert env["stdout"] == b"y\n/\n"


def test_timeouts_are_those_of_timeout_k(server: Server) -> None:
    start = time.monotonic()
    r = server.run(["sleep", "100"], timeout=1)
    assert (r["rc"], r["timed_out"]) == (124, True) and time.monotonic() - start < 3
    # TERM ignored: KILL after the grace, exit 137
    r = server.run(["sh", "-c", "trap '' TERM; sleep 100"], timeout=1)
    assert (r["rc"], r["timed_out"]) == (137, True)
    # the whole process group goes, not only the command: else the child holds the pipes
    start = time.monotonic()
    r = server.run(["sh", "-c", "sleep 100 & wait"], timeout=1)
    assert r["rc"] == 124 and time.monotonic() - start < 1 + channel_server.IO_DRAIN_S - 0.5
    # a stopped command is woken to take its TERM, as timeout does
    start = time.monotonic()
    r = server.run(["sh", "-c", "kill -STOP $$"], timeout=1)
    assert r["rc"] == 124 and time.monotonic() - start < 1 + channel_server.KILL_GRACE_S


def test_a_script_without_a_shebang_runs_under_sh(server: Server, tmp_path: Path) -> None:
    script = tmp_path / "script"
    script.write_text("echo from-sh\n")
    script.chmod(0o755)
    r = server.run([str(script)])
    assert (r["rc"], r["stdout"]) == (0, b"from-sh\n")


def test_a_signal_and_a_missing_command_as_the_exec_path_reports_them(server: Server) -> None:
    assert server.run(["sh", "-c", "kill -SEGV $$"])["rc"] == 128 + 11
    missing = server.run(["pc-no-such-command"])
    assert missing["rc"] == 127
    assert missing["stderr"].startswith(b"timeout: failed to run command")


def test_a_background_child_holding_the_pipes_costs_two_seconds_not_its_life(
        server: Server) -> None:
    start = time.monotonic()
    r = server.run(["sh", "-c", "sleep 30 & echo started"], timeout=1)
    took = time.monotonic() - start
    assert (r["rc"], r["stdout"], r["timed_out"]) == (0, b"started\n", False)
    assert channel_server.IO_DRAIN_S - 0.5 < took < channel_server.IO_DRAIN_S + 2, took


def test_output_is_capped(server: Server) -> None:
    r = server.run(["sh", "-c", "head -c 100000 /dev/zero"], max_output=1000)
    assert r["rc"] == 0 and len(r["stdout"]) == 1000
    assert server.run(["echo", "x"], max_output=0)["stdout"] == b""


def test_a_line_cut_off_by_the_end_of_stdin_is_not_run(tmp_path: Path) -> None:
    s = Server()
    assert s.proc.stdin is not None
    mark = tmp_path / "ran"
    s.proc.stdin.write(json.dumps({"id": 1, "argv": ["touch", str(mark)],
                                   "timeout": 5}).encode())  # no newline: cut off
    s.proc.stdin.close()
    assert s.proc.wait(10) == 0
    assert not mark.exists()


def test_requests_run_side_by_side(server: Server) -> None:
    assert server.proc.stdin is not None and server.proc.stdout is not None
    for ident, secs in ((1, "2"), (2, "0")):
        server.proc.stdin.write(json.dumps({"id": ident, "argv": ["sleep", secs],
                                            "timeout": 10}).encode() + b"\n")
    server.proc.stdin.flush()
    first = json.loads(server.line())
    assert first["id"] == 2  # the short one did not wait for the long one
    assert json.loads(server.line())["id"] == 1


def test_files_written_with_their_mode_and_read_back(server: Server, tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "f"
    data = base64.b64encode(b"\x00bytes").decode()
    assert server.ask({"write": str(path), "data": data, "mode": 0o640}) == {"id": 1}
    assert path.read_bytes() == b"\x00bytes" and path.stat().st_mode & 0o7777 == 0o640
    assert sorted(os.listdir(path.parent)) == ["f"]  # no temporary file left
    read = server.ask({"read": str(path)})
    assert base64.b64decode(read["data"]) == b"\x00bytes"
    missing = server.ask({"read": str(tmp_path / "none")})
    assert missing["error"].startswith("FileNotFoundError")


def test_a_bad_request_is_an_error_reply_and_the_channel_goes_on(server: Server) -> None:
    assert server.proc.stdin is not None and server.proc.stdout is not None
    server.proc.stdin.write(b"{not json\n")
    server.proc.stdin.flush()
    unreadable = json.loads(server.line())
    assert unreadable["id"] is None and unreadable["error"].startswith("unreadable request")
    bad = server.ask({"argv": ["true"]})  # no timeout
    assert bad["error"] == "KeyError: 'timeout'"
    assert server.run(["true"])["rc"] == 0
