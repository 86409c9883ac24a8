"""The nslcd fuzzer against the fake daemons of tests/fixtures/faulty_nslcd_daemons.py.

* each daemon in ``FOUND`` is found, with the expected finding kind, within ``BUDGET_S``
  seconds of fuzzing (seed 1; the first finding stops the run);
* the correct daemon yields no finding in the same budget; the daemons that stop strings
  at a NUL or take a cut string as complete (what nslcd and pynslcd do: no gain) yield
  only their SHOULD kinds, graded NON-STRICT, never a FAIL;
* a finding saved by ``pamconform fuzz server`` holds no password in clear, replays
  (``pamconform fuzz replay``) against its daemon and not against the correct one; a
  crash replays against a fresh copy of the crashing daemon;
* the oracle never calls a grant of a given login (user name in any case), or the
  administrator path for a root peer, a finding; the sequence is a function of the seed.

Times to the first finding are printed (``pytest -s``).
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from listening import wait_listening

from pamconform.cli.main import main
from pamconform.core.redaction import register_login
from pamconform.fuzz.engine import Fuzzer, FuzzResult
from pamconform.protocols.nslcd import codec
from pamconform.protocols.nslcd.fuzz_generators import Generator, authc
from pamconform.protocols.nslcd.fuzz_items import Exec
from pamconform.protocols.nslcd.fuzz_model import config
from pamconform.protocols.nslcd.fuzz_oracle import Oracle
from pamconform.protocols.nslcd.fuzz_wire import Outcome

ROOT = Path(__file__).resolve().parents[1]
DAEMONS = ROOT / "tests" / "fixtures" / "faulty_nslcd_daemons.py"
LOGINS = [(b"nancy", b"nancy-ldap-pw"), (b"Mixed", b"mixed-ldap-pw")]
CREDENTIALS = ["--credentials", "nancy:nancy-ldap-pw", "--credentials", "Mixed:mixed-ldap-pw"]
BUDGET_S = 5.0
TIMEOUT = 1.5
#: the fake daemons drop a stalled client after 1 s
IDLE_LIMIT = 2.5

#: Faulty daemon -> the kind of its first finding.
FOUND = {
    "grants-any-password": "grant",
    "grants-empty-password": "grant",
    "prefix-password": "grant",
    "case-insensitive-password": "grant",
    "grants-unknown-user": "grant",
    "wrong-user-name": "wrong-user",
    "any-version": "grant",
    "unknown-action-as-authc": "grant",
    "crashes-on-huge-length": "gone",
    "grants-after-stall": "grant",
    "hangs-on-short-read": "hang",
}

#: Daemons whose findings come from stalls, which are waited out side by side: which
#: stall answer is judged first depends on the load (a grant of a cut copy of the exact
#: password is ``cut-grant``), so the expected kind must be among the first two.
RACING = {"grants-after-stall"}


class Daemon:
    """A fake daemon in a child process (a crash takes only the child)."""

    def __init__(self, name: str, directory: Path) -> None:
        self.name = name
        self.socket = directory / f"{name}.sock"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Daemon:
        if self.socket.exists():
            self.socket.unlink()
        self.proc = subprocess.Popen([sys.executable, str(DAEMONS), self.name,
                                      "--socket", str(self.socket)])
        wait_listening(self.socket, self.proc, self.name)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[object]:
    started: list[Daemon] = []

    def start(name: str) -> Daemon:
        d = Daemon(name, tmp_path).start()
        started.append(d)
        return d

    yield start
    for d in started:
        d.stop()


@pytest.fixture(autouse=True)
def _logins() -> None:
    for user, password in LOGINS:
        register_login(user, password)


def fuzz(socket: Path, *, seconds: float = BUDGET_S, max_findings: int = 1) -> FuzzResult:
    cfg = config(socket, LOGINS, idle_limit=IDLE_LIMIT, seed=1, seconds=seconds,
                 timeout=TIMEOUT, max_findings=max_findings)
    return Fuzzer(cfg).run()


@pytest.mark.parametrize("name", sorted(FOUND))
def test_finds_the_faulty_daemon(daemon, name: str) -> None:
    d = daemon(name)
    result = fuzz(d.socket, max_findings=2 if name in RACING else 1)
    assert result.findings, f"{name}: nothing found in {BUDGET_S} s ({result.summary()})"
    first = result.findings[0]
    print(f"\n{name}: {first.kind} after {first.found_after_s:.2f} s "
          f"(item {first.iteration}, {first.generator})")
    if name in RACING:
        assert FOUND[name] in [f.kind for f in result.findings]
    else:
        assert first.kind == FOUND[name]
    assert first.found_after_s < BUDGET_S


@contextlib.contextmanager
def _wedged(path: Path) -> Iterator[socket.socket]:
    """A listener that accepts no one, its queue of waiting connections full."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(0)
    queued = []
    try:
        for _ in range(3):
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                c.connect(str(path))
            queued.append(c)
        yield listener
    finally:
        for c in queued:
            c.close()
        listener.close()


def test_a_full_queue_is_busy_and_nothing_listening_is_gone(tmp_path: Path) -> None:
    from pamconform.protocols.nslcd.fuzz_wire import listening

    path = tmp_path / "busy.sock"
    with _wedged(path) as listener:
        assert listening(str(path), 0.3) == "busy"
        # the daemon takes a waiting client: the queue has room again
        listener.setblocking(False)
        listener.accept()[0].close()
        assert listening(str(path), 0.3) == "accepts"
    assert listening(str(path), 0.3) == "gone"  # the file is there, nothing listens
    path.unlink()
    assert listening(str(path), 0.3) == "gone"


def test_a_daemon_that_accepts_no_one_is_a_hang_not_gone(tmp_path: Path) -> None:
    path = tmp_path / "wedged.sock"
    with _wedged(path):
        result = fuzz(path, seconds=10.0)
    assert [f.kind for f in result.findings] == ["hang"], result.summary()
    assert "stayed full" in result.findings[0].observed
    assert result.stopped == "server-gone"


def test_correct_daemon_yields_nothing(daemon) -> None:
    d = daemon("correct")
    result = fuzz(d.socket, max_findings=0)
    assert result.findings == [], [f.as_dict() for f in result.findings]
    assert not result.violations
    assert result.items > 100  # it really fuzzed
    assert result.stats["stalls"] >= 3  # the stalls were sent (and waited out)


@pytest.mark.parametrize(("name", "kind"), [("nul-terminated", "nul-grant"),
                                            ("cut-string-complete", "cut-grant")])
def test_no_gain_defects_are_should_only(daemon, name: str, kind: str) -> None:
    from pamconform.core.verdicts import Verdict
    from pamconform.fuzz.results import target_result

    d = daemon(name)
    result = fuzz(d.socket, seconds=3.0, max_findings=0)
    assert {f.kind for f in result.findings} == {kind}
    graded = target_result(name, result)
    verdicts = {r.case.id: r.verdict for r in graded.results}
    assert Verdict.FAIL not in verdicts.values()
    assert Verdict.NON_STRICT in verdicts.values()


def _files(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if p.is_file()]


def test_finding_saved_without_password_and_replays(daemon, tmp_path: Path, capsys) -> None:
    faulty = daemon("grants-empty-password")
    correct = daemon("correct")
    report = tmp_path / "report"
    rc = main(["fuzz", "server", str(faulty.socket), "--protocol", "nslcd", *CREDENTIALS,
               "--seconds", "2", "--timeout", str(TIMEOUT), "--idle-limit", str(IDLE_LIMIT),
               "--report", str(report), "--quiet"])
    out = capsys.readouterr().out
    assert rc == 1, out
    findings = sorted((report / "findings").glob("grant-*.json"))
    assert findings, out
    for path in [*_files(report)]:
        data = path.read_bytes()
        for _, password in LOGINS:
            assert password not in data, path
            assert password.hex().encode() not in data, path
    assert b"nancy-ldap-pw" not in out.encode()
    assert oct(findings[0].stat().st_mode & 0o777) == "0o600"
    rc = main(["fuzz", "replay", str(findings[0]), str(faulty.socket), *CREDENTIALS])
    assert rc == 1, capsys.readouterr().out
    assert "STILL REPRODUCES" in capsys.readouterr().out
    rc = main(["fuzz", "replay", str(findings[0]), str(correct.socket), *CREDENTIALS])
    assert rc == 0
    assert "no longer reproduces" in capsys.readouterr().out


def test_crash_finding_replays(daemon, tmp_path: Path, capsys) -> None:
    crashing = daemon("crashes-on-huge-length")
    report = tmp_path / "report"
    rc = main(["fuzz", "server", str(crashing.socket), "--protocol", "nslcd", *CREDENTIALS,
               "--seconds", "3", "--timeout", str(TIMEOUT), "--report", str(report),
               "--quiet"])
    assert rc == 1
    (finding,) = (report / "findings").glob("gone-*.json")
    fresh = daemon("crashes-on-huge-length")  # the first one is dead
    rc = main(["fuzz", "replay", str(finding), str(fresh.socket), *CREDENTIALS])
    assert rc == 1, capsys.readouterr().out
    correct = daemon("correct")
    assert main(["fuzz", "replay", str(finding), str(correct.socket), *CREDENTIALS]) == 0


def test_usage_errors(daemon, tmp_path: Path, capsys) -> None:
    d = daemon("correct")
    assert main(["fuzz", "server", str(d.socket), "--protocol", "nslcd",
                 "--report", str(tmp_path / "r")]) == 2
    assert main(["fuzz", "server", str(d.socket), "--protocol", "nslcd", "--credentials",
                 "nancy:wrong-password", "--report", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "does not grant nancy's login" in err
    assert "wrong-password" not in err
    assert main(["fuzz", "server", str(tmp_path / "missing.sock"), "--protocol", "nslcd",
                 *CREDENTIALS]) == 2


# -- the oracle and the generator, without a daemon ------------------------------------------

def _granted(user: bytes) -> Outcome:
    entry = codec.AuthcResult(codec.PamCode.SUCCESS, user, codec.PamCode.SUCCESS, b"")
    return Outcome("reply", reply=codec.Reply(codec.Action.PAM_AUTHC, (entry,)))


def _judge(oracle: Oracle, data: bytes, named: bytes = b"nancy", **kw: object) -> str | None:
    v = oracle.judge(Exec((data,), **kw), _granted(named), TIMEOUT)  # type: ignore[arg-type]
    return None if v is None else v.kind


def test_oracle_classes_grants() -> None:
    root, other = Oracle(LOGINS, root_peer=True), Oracle(LOGINS, root_peer=False)
    pw = b"nancy-ldap-pw"
    assert _judge(root, authc(b"nancy", pw).encode()) is None
    assert _judge(root, authc(b"NANCY", pw).encode(), b"nancy") is None  # uid case
    assert _judge(root, authc(b"nancy", pw).encode(), b"root") == "wrong-user"
    assert _judge(root, authc(b"nancy", pw[:-1]).encode()) == "grant"
    assert _judge(root, authc(b"nancy", b"").encode()) == "grant"
    assert _judge(root, authc(b"nobody", pw).encode()) == "grant"
    assert _judge(root, authc(b"nancy", pw, version=3).encode()) == "grant"
    assert _judge(root, authc(b"nancy", pw + b"\0x").encode()) == "nul-grant"
    assert _judge(root, authc(b"", b"").encode(), b"") is None  # rootpwmodpw, root peer
    assert _judge(other, authc(b"", b"").encode(), b"") == "grant"
    assert _judge(root, authc(b"", pw).encode(), b"") == "grant"
    valid = authc(b"nancy", pw).encode()
    cut = valid[:-len(pw) - 4] + codec.int32(len(pw) + 5) + pw
    assert _judge(root, cut, stall_s=1.0) == "cut-grant"
    assert _judge(root, valid[:-3], stall_s=1.0) == "grant"  # a cut password is not it


def test_oracle_refusals_hangs_and_positive_control() -> None:
    oracle = Oracle(LOGINS)
    valid = authc(b"nancy", b"nancy-ldap-pw").encode()
    refused = Outcome("reply", reply=codec.Reply(codec.Action.PAM_AUTHC, ()))
    assert oracle.judge(Exec((valid[:-1],), shutdown=True), refused, TIMEOUT) is None
    v = oracle.judge(Exec((valid,)), refused, TIMEOUT)
    assert v is not None and v.kind == "valid-denied"
    v = oracle.judge(Exec((valid,)), Outcome("timeout"), TIMEOUT)
    assert v is not None and v.kind == "hang"
    v = oracle.judge(Exec((valid[:5],), stall_s=1.0), Outcome("timeout"), TIMEOUT)
    assert v is not None and v.kind == "idle"
    assert oracle.judge(Exec((valid[:5],), stall_s=1.0), Outcome("closed"), TIMEOUT) is None


def test_sequence_is_a_function_of_the_seed() -> None:
    a, b, c = Generator(1, LOGINS), Generator(1, LOGINS), Generator(2, LOGINS)
    keys = [a.item(i).key() for i in range(300)]
    assert keys == [b.item(i).key() for i in range(300)]
    assert keys[100:] != [c.item(i).key() for i in range(100, 300)]
    assert len({a.item(i).generator.split(".")[0] for i in range(300)}) == 3
