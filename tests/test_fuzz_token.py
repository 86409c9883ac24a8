"""The token fuzzer against the token gallery, with a fixed seed and a CI budget.

* ``prefix-accepting``, ``case-insensitive`` and ``nul-terminated`` are found as
  grants (shrunk, and replayable against any fresh token), ``unbounded-read`` as a
  hang, each within ``BUDGET_S`` seconds of fuzzing (seed 1);
* the reference server yields no finding in the same budget;
* the same seed gives the same transformation sequence, on the wire too;
* a finding replays against the faulty server and not against the reference (CLI
  included), and the report grades the ``fuzz.token.*`` cases.

Token command: the server with ``--socket-dir <tmp>``, ``--timeout 10``,
``--idle-timeout 1`` and ``--allow-uid`` our own uid.  Times to find and executions
per second are printed (``pytest -s``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from pamconform.cli.main import main
from pamconform.fuzz.engine import Fuzzer, FuzzResult
from pamconform.protocols.token.fuzz_cases import (
    OPS,
    SAMPLE,
    Delivery,
    TokenGenerator,
    Transform,
    apply,
)
from pamconform.protocols.token.fuzz_minter import Minter
from pamconform.protocols.token.fuzz_model import MODEL, TokenFinding, config
from pamconform.protocols.token.minting import Token

ROOT = Path(__file__).resolve().parents[1]
SERVER = ROOT / "servers" / "token_server.py"
FAULTY = ROOT / "tests" / "fixtures" / "faulty_token_servers.py"
SEED = 1
#: Seconds of fuzzing per server (shrinking comes on top).
BUDGET_S = 5.0
TIMEOUT = 1.5

#: Gallery server -> (finding kind, the ops the (shrunk) reproducer may use).
FOUND = {
    "prefix-accepting": ("grant", {"prefix", "empty"}),
    "case-insensitive": ("grant", {"case"}),
    "nul-terminated": ("grant", {"append"}),
    "unbounded-read": ("hang", {"exact"}),
}
#: Shrunk reproducers the shrinker must reach.
SHRUNK = {
    "prefix-accepting": Transform.of("prefix", len=0),
    "nul-terminated": Transform.of("append", hex="00"),
}


def token_command(directory: Path, faulty: str | None = None) -> str:
    script = [str(FAULTY), faulty] if faulty else [str(SERVER)]
    return shlex.join([sys.executable, *script, "--socket-dir", str(directory), "--timeout",
                       "10", "--idle-timeout", "1", "--allow-uid", str(os.getuid())])


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def _reap_dir(directory: Path) -> None:
    """Every socket is gone once the servers of spent tokens have exited."""
    deadline = time.monotonic() + 3
    while os.listdir(directory) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert os.listdir(directory) == []


def _reap(minter: Minter, directory: Path) -> None:
    """Stop any server a minted token still names, then check every socket is gone."""
    deadline = time.monotonic() + 3
    pids = {m.token.pid for m in minter.minted()}
    while any(_running(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in pids:
        with contextlib.suppress(OSError):
            if _running(pid) and b"token_server" in Path(f"/proc/{pid}/cmdline").read_bytes():
                os.kill(pid, signal.SIGKILL)
    assert os.listdir(directory) == []


def _fuzz(command: str, directory: Path, **options: Any) -> FuzzResult:
    settings: dict[str, Any] = {"seed": SEED, "seconds": BUDGET_S, "timeout": TIMEOUT,
                                "max_findings": 1, "shrink_replays": 20,
                                "shrink_seconds": 4.0, **options}
    fuzzer = Fuzzer(config(command, socket_dir=directory, **settings))
    try:
        return fuzzer.run()
    finally:
        _reap(fuzzer.session.minter, directory)  # type: ignore[attr-defined]


def _replays(finding: TokenFinding, command: str, directory: Path) -> bool:
    cfg = config(command, socket_dir=directory, timeout=TIMEOUT)
    try:
        return MODEL.replay(finding, cfg).reproduces
    finally:
        _reap_dir(directory)


@pytest.mark.parametrize("name", sorted(FOUND))
def test_fuzzer_finds_gallery_server(name: str, short_dir: Path) -> None:
    kind, ops = FOUND[name]
    result = _fuzz(token_command(short_dir, name), short_dir)
    assert result.findings, f"{name}: no finding in {BUDGET_S} s ({result.summary()})"
    finding = result.findings[0]
    print(f"\n{name}: {finding.kind} after {finding.found_after_s:.2f} s (item "
          f"{finding.iteration}, {finding.case.generator}): {finding.case.describe()} "
          f"= {finding.payload[:60]!r}; {result.execs_per_s:.1f} execs/s, minting "
          f"{result.stats['mint_ms']:.0f} ms a token")
    assert finding.kind == kind and finding.case.transform.op in ops
    assert finding.found_after_s <= BUDGET_S
    if kind != "grant":
        return
    assert finding.shrink.get("reproduced") is True
    if name in SHRUNK:
        assert finding.case.transform == SHRUNK[name]
    loaded = TokenFinding.from_dict(json.loads(json.dumps(finding.as_dict())))
    assert loaded.case == finding.case and loaded.kind == kind
    assert _replays(loaded, token_command(short_dir, name), short_dir)
    assert not _replays(loaded, token_command(short_dir), short_dir)


def test_reference_server_yields_no_finding(short_dir: Path) -> None:
    result = _fuzz(token_command(short_dir), short_dir, max_findings=0)
    assert result.findings == [] and not result.violations, result.summary()
    assert result.stopped == "time" and result.execs >= 10
    assert {"control", "walk"} <= set(result.generators)
    print(f"\nreference: {result.execs} attempts in {result.fuzz_seconds:.1f} s = "
          f"{result.execs_per_s:.1f}/s; minting {result.stats['mint_ms']:.0f} ms a token "
          f"({result.stats['mint_ahead']} ahead), {result.stats['mint_wait_share']:.0%} of "
          "the time waiting for a token")


INVERTED = """
import sys
sys.path.insert(0, {fixtures!r})
import faulty_token_servers as f

class Inverted(f.Base):
    def matches(self, received):
        return not super().matches(received)

sys.exit(f.ref.main(sys.argv[1:], factory=Inverted, prog="inverted"))
"""


def test_positive_control_catches_inverted_polarity(short_dir: Path, tmp_path: Path) -> None:
    script = tmp_path / "inverted.py"
    script.write_text(INVERTED.format(fixtures=str(FAULTY.parent)))
    command = token_command(short_dir).replace(shlex.quote(str(SERVER)), shlex.quote(str(script)))
    result = _fuzz(command, short_dir, max_findings=2)
    kinds = {f.kind: f for f in result.findings}
    assert set(kinds) == {"exact-refused", "grant"}, result.summary()
    control = kinds["exact-refused"]
    assert control.iteration == 0 and control.case.control
    assert control.shrink.get("reproduced") is True


def test_same_seed_same_sequence(short_dir: Path) -> None:
    a = TokenGenerator(SEED).cases(400)
    assert a == TokenGenerator(SEED).cases(400)
    assert a != TokenGenerator(SEED + 1).cases(400)
    assert {c.transform.op for c in a} == set(OPS)
    assert {c.generator.split(".")[0] for c in a} == {"control", "walk", "havoc"}
    digests = [_fuzz(token_command(short_dir), short_dir, max_findings=0, seconds=60,
                     max_examples=12).digest for _ in range(2)]
    assert digests[0] == digests[1]


def test_transformations_apply_to_any_token() -> None:
    token = Token(1000, 4242, "AbCdEfGh+/0123456789abcdefghijkl")
    raw = token.raw
    assert apply(Transform.of("prefix", len=5), token) == b"TTK10"
    assert apply(Transform.of("prefix", drop=1), token) == raw[:-1]
    assert apply(Transform.of("prefix", len=999), token) == raw[:-1]  # always proper
    assert apply(Transform.of("tail", head=0), token) == token.auth.encode()
    assert apply(Transform.of("append", hex="00"), token) == raw + b"\0"
    assert apply(Transform.of("case", part="secret", nth=(0,)), token) == raw.replace(
        b"AbCd", b"abCd")
    assert apply(Transform.of("field", field="pid", form="plus1"), token) == raw.replace(
        b":4242:", b":4243:")
    assert apply(Transform.of("double", hex="0a"), token) == raw + b"\n" + raw
    for other in (token, Token(0, 1, "0123456789+/0123456789+/01234567"), SAMPLE):
        for case in TokenGenerator(7).cases(300):
            payload = apply(case.transform, other)
            assert (payload == other.raw) == case.control, case
            assert Transform.from_dict(case.transform.as_dict()) == case.transform
            assert Delivery.from_dict(case.delivery.as_dict()) == case.delivery
    # splits never fall after the token's length; a short attempt is half-closed
    chunks, pauses, shut = Delivery((5, 50, 70), (10, 10, 10)).plan(raw + b"\0" * 30, len(raw))
    assert [len(c) for c in chunks] == [5, len(raw) - 5 + 30] and not shut
    assert pauses == [0.01, 0.0]
    assert Delivery().plan(raw[:3], len(raw))[2] is True
    with pytest.raises(ValueError):
        Transform.from_dict({"op": "append", "hex": "zz"})
    with pytest.raises(ValueError):
        Transform.from_dict({"op": "nope"})


def test_cli_report_and_replay(short_dir: Path, tmp_path: Path) -> None:
    report_dir = tmp_path / "report"
    faulty = token_command(short_dir, "nul-terminated")
    code = main(["fuzz", "server", str(short_dir), "--protocol", "transient-token",
                 "--token-command", faulty, "--seconds", "3", "--max-findings", "1",
                 "--timeout", str(TIMEOUT), "--report", str(report_dir), "--quiet"])
    assert code == 1
    (path,) = sorted((report_dir / "findings").glob("*.json"))
    finding = TokenFinding.load(path)
    assert finding.kind == "grant" and finding.case.transform == SHRUNK["nul-terminated"]
    assert set(json.loads(path.read_text())) >= {
        "protocol", "kind", "transform", "delivery", "expected", "observed", "seed", "wire"}
    index = json.loads((report_dir / "index.json").read_text())
    (target,) = index["targets"]
    assert target["kind"] == "server" and target["protocol"] == "transient-token"
    assert target["fuzz"]["seed"] == SEED and target["fuzz"]["mint_ms"] > 0
    verdicts = {c["id"]: c["verdict"] for c in target["cases"]}
    assert verdicts == {"fuzz.token.passes-only-exact-token": "FAIL",
                        "fuzz.token.passes-exact-token": "PASS",
                        "fuzz.token.answers-in-time": "PASS",
                        "fuzz.token.serves-fresh-token": "PASS"}
    grant = next(c for c in target["cases"] if c["verdict"] == "FAIL")
    assert grant["evidence"]["findings"][0]["file"] == f"findings/{path.name}"
    replay_cli = ["fuzz", "replay", str(path), str(short_dir), "--timeout", str(TIMEOUT),
                  "--token-command"]
    assert main([*replay_cli, faulty]) == 1
    assert main([*replay_cli, token_command(short_dir)]) == 0
    time.sleep(0.3)
    assert os.listdir(short_dir) == []


def test_bad_input_exits_2(short_dir: Path, tmp_path: Path) -> None:
    good = token_command(short_dir)
    base = ["fuzz", "server", str(short_dir), "--protocol", "transient-token"]
    assert main(base) == 2  # no --token-command
    assert main([*base, "--token-command", "echo hello"]) == 2
    assert main([*base, "--token-command", good, "--credentials", "a:bbbb"]) == 2
    assert main(["fuzz", "server", str(short_dir), "--token-command", good,
                 "--credentials", "a:bbbb"]) == 2  # --token-command without the protocol
    finding = tmp_path / "grant.json"
    finding.write_text(json.dumps({"protocol": "transient-token", "kind": "grant",
                                   "transform": {"op": "prefix", "len": 3}}))
    assert main(["fuzz", "replay", str(finding), str(short_dir)]) == 2  # no --token-command
    finding.write_text(json.dumps({"protocol": "transient-token", "kind": "grant",
                                   "transform": {"op": "bogus"}}))
    assert main(["fuzz", "replay", str(finding), "--token-command", good]) == 2
    assert os.listdir(short_dir) == []
