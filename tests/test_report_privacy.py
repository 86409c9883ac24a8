"""No password or token in anything pamconform writes; reports and findings are private.

End to end: the CLI runs in a child process against the reference server and faulty
gallery servers (so cases FAIL and print evidence) with a distinctive password, and
every file under the report directory, the saved findings and regressions, and
stdout/stderr are searched for the secret in every form it could be rendered in.
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pamconform import report
from pamconform.core import privatefiles, resources
from pamconform.core.lookalikes import variants
from pamconform.core.redaction import register_login
from pamconform.core.registry import Case
from pamconform.core.runner import CaseResult, TargetResult
from pamconform.core.verdicts import Severity, Verdict
from pamconform.lab import gallery
from pamconform.lab.localserver import LocalServer, reference_command
from pamconform.protocols.redirector.fuzz_items import Finding, single

ROOT = Path(__file__).resolve().parent.parent
USER = "alice"
#: Distinctive, with a quote (escaped differently by repr, JSON, HTML and XML); lower
#: case, so that the normalising server grants it (and its upper-case form).
PASSWORD = "qx7'vz9-kw2plm"


def forms(secret: bytes) -> set[str]:
    """Every way the harness could render ``secret`` as text."""
    text = secret.decode()
    out = {text, repr(secret)[2:-1], repr(text)[1:-1], json.dumps(text)[1:-1],
           json.dumps(text, ensure_ascii=False)[1:-1], html.escape(text),
           html.escape(text, quote=False), secret.hex(), secret.hex().upper(),
           text.replace("'", "&apos;"), text.replace("'", "\\'")}
    for enc in (base64.b64encode(secret), base64.urlsafe_b64encode(secret)):
        out.add(enc.decode())
        out.add(enc.decode().rstrip("="))
    return out


def leaks(texts: dict[str, str], secrets: list[bytes]) -> list[str]:
    """``where: form`` for every rendering of a secret found in the texts."""
    found = []
    for secret in secrets:
        for form in forms(secret):
            for where, text in texts.items():
                if form in text:
                    found.append(f"{where}: {form!r}")
    return found


def tree_texts(directory: Path) -> dict[str, str]:
    return {str(p): p.read_bytes().decode("utf-8", "replace")
            for p in directory.rglob("*") if p.is_file()}


def pamconform(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("PAMCONFORM_CREDENTIALS", None)
    return subprocess.run([sys.executable, "-m", "pamconform.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, env=env,
                          check=False)


@pytest.fixture
def servers() -> Iterator[dict[str, LocalServer]]:
    """The reference server and three faulty ones that grant mutated passwords."""
    commands = gallery.commands()
    chosen = {"reference": reference_command(), "prefix-match": commands["prefix-match"],
              "normalising": commands["normalising"], "nfkc-password": commands["nfkc-password"]}
    started: dict[str, LocalServer] = {}
    try:
        for name, command in chosen.items():
            started[name] = LocalServer(command, [(USER, PASSWORD)], name=name).__enter__()
        yield started
    finally:
        for server in started.values():
            server.stop()


#: Cases that send the password, mutated or not, in FAIL evidence of the faulty servers.
CASES = ["redir.server.grant-valid", "redir.server.deny-*-password", "redir.server.frame-*",
         "redir.server.wrong-after-right", "redir.server.right-after-wrong",
         "redir.server.regression-*", "redir.server.deny-lookalike-password"]


def test_server_runs_never_show_the_password(servers: dict[str, LocalServer],
                                             tmp_path: Path) -> None:
    texts: dict[str, str] = {}
    failed = False
    for name, server in servers.items():
        out = tmp_path / name
        args = ["server", str(server.socket), "--credentials", f"{USER}:{PASSWORD}",
                "--report", str(out), "--timeout", "2"]
        for glob in CASES:
            args += ["--cases", glob]
        done = pamconform(*args)
        assert done.returncode in (0, 1), (name, done.stderr, server.log_tail())
        failed |= done.returncode == 1
        texts |= {f"{name} stdout": done.stdout, f"{name} stderr": done.stderr}
        texts |= tree_texts(out)
        assert (out / "index.json").is_file()
    assert failed, "the faulty servers must FAIL cases, so that evidence is printed"
    index = json.loads((tmp_path / "prefix-match" / "index.json").read_text())
    wire = json.dumps(index, ensure_ascii=False)
    # the evidence keeps its shape: the marker, and a truncated password relative to it
    assert f"password of {USER}, {len(PASSWORD)} bytes" in wire
    assert re.search(r"password of alice, 14 bytes\u203a\[:\d+\]", wire), \
        "a truncated password is shown as a slice of the marker"
    # a look-alike of the password (full-width, homoglyphs ...) is a derived secret
    nfkc = (tmp_path / "nfkc-password" / "index.json").read_text()
    assert "\u203a.fullwidth()" in json.dumps(json.loads(nfkc), ensure_ascii=False)
    lookalikes = [v for _, v in variants(PASSWORD.encode()) if v.isascii() or _utf8(v)]
    assert leaks(texts, [PASSWORD.encode(), *lookalikes]) == []


def _utf8(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True


def test_fuzz_findings_and_regressions_hold_references(servers: dict[str, LocalServer],
                                                       tmp_path: Path) -> None:
    sock = str(servers["prefix-match"].socket)
    out, saved = tmp_path / "report", tmp_path / "regressions"
    done = pamconform("fuzz", "server", sock, "--credentials", f"{USER}:{PASSWORD}",
                      "--seconds", "3", "--max-findings", "1", "--report", str(out),
                      "--save-regressions", str(saved))
    assert done.returncode == 1, done.stdout + done.stderr
    texts = tree_texts(out) | tree_texts(saved) | {"stdout": done.stdout,
                                                   "stderr": done.stderr}
    assert leaks(texts, [PASSWORD.encode()]) == []
    (regression,) = sorted(saved.glob("*.json"))
    data = json.loads(regression.read_text())
    refs = [part for h in data["valid_hex"] if isinstance(h, list) for part in h
            if isinstance(part, dict)]
    assert refs and refs[0]["password_of"] == USER and refs[0]["bytes"] == len(PASSWORD)
    # still replayable: the password comes from the logins given to the replay
    replay = pamconform("fuzz", "replay", str(regression), sock,
                        "--credentials", f"{USER}:{PASSWORD}")
    assert replay.returncode == 1, replay.stdout + replay.stderr
    assert "STILL REPRODUCES" in replay.stdout
    assert leaks({"replay": replay.stdout + replay.stderr}, [PASSWORD.encode()]) == []
    without = pamconform("fuzz", "replay", str(regression), sock)
    assert without.returncode == 2 and "password of alice" in without.stderr


def test_token_suite_never_shows_a_token(tmp_path: Path) -> None:
    sockets = Path(tmp_path / "s")
    sockets.mkdir(mode=0o700)
    printed = tmp_path / "tokens.log"
    server = resources.servers_dir() / "token_server.py"
    faulty = ROOT / "tests" / "fixtures" / "faulty_token_servers.py"
    texts: dict[str, str] = {}
    for name, script in (("reference", [str(server)]),
                         ("case-insensitive", [str(faulty), "case-insensitive"])):
        mint = shlex.join([sys.executable, *script, "--socket-dir", str(sockets),
                           "--timeout", "10", "--allow-uid", str(os.getuid())])
        command = f"{mint} | tee -a {shlex.quote(str(printed))}"
        out = tmp_path / name
        done = pamconform("server", str(sockets), "--protocol", "transient-token",
                          "--token-command", command, "--report", str(out),
                          "--timeout", "2", "--idle-limit", "3",
                          "--exclude-cases", "*expir*")
        assert done.returncode in (0, 1), done.stdout + done.stderr
        texts |= tree_texts(out) | {f"{name} stdout": done.stdout,
                                    f"{name} stderr": done.stderr}
    tokens = re.findall(rb"TTK[0-9]+:[0-9]+:[A-Za-z0-9+/]{32}", printed.read_bytes())
    assert len(tokens) > 10
    secrets = sorted(set(tokens)) + sorted({t.rsplit(b":", 1)[1] for t in tokens})
    assert leaks(texts, secrets) == []
    assert "token, " in "".join(texts.values())


# ------------------------------------------------------------------ private files


def _result(message: str) -> TargetResult:
    case = Case("x.case", "R-S2", Severity.MUST, "title", "requirement", "redirector",
                "server", lambda ctx: None, "suite")
    target = TargetResult("t", "server", "redirector")
    target.results.append(CaseResult(case, Verdict.FAIL, message, 0.1,
                                     {"notes": [message]}))
    return target


@pytest.mark.parametrize("umask", [0o000, 0o022])
def test_reports_and_findings_are_private_whatever_the_umask(tmp_path: Path,
                                                             umask: int) -> None:
    old = os.umask(umask)
    try:
        run = report.Run(targets=[_result("expected a denial")])
        directory = report.default_dir(tmp_path / "reports", run.started)
        report.write(run, directory)
        report.point_latest(directory)
        given = report.write(run, tmp_path / "given" / "deeper")
        finding = Finding("redirector", "grant", single(b"alice\nx\n"), "deny", "grant", 1, 1)
        path = finding.save(directory / "findings")
    finally:
        os.umask(old)
    assert (tmp_path / "reports" / "latest").is_symlink()
    for d in (tmp_path / "reports", directory, directory / "findings", tmp_path / "given",
              given):
        assert d.stat().st_mode & 0o777 == 0o700, d
    for f in [*directory.iterdir(), *given.iterdir(), path]:
        if f.is_file():
            assert f.stat().st_mode & 0o777 == 0o600, f


def test_two_runs_in_the_same_second_get_two_directories(tmp_path: Path) -> None:
    stamp = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    first = report.default_dir(tmp_path, stamp)
    second = report.default_dir(tmp_path, stamp)
    assert first != second and first.is_dir() and second.is_dir()
    assert second.name.startswith(first.name)


def test_an_existing_report_file_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "index.json"
    path.write_text("old")
    path.chmod(0o644)
    privatefiles.write_text(path, "new")
    assert path.read_text() == "new" and path.stat().st_mode & 0o777 == 0o600


def test_report_write_redacts_messages_and_evidence(tmp_path: Path) -> None:
    register_login(b"carol", b"carols-Secret-9")
    run = report.Run(targets=[_result("got a grant for b'carol\\ncarols-Secret-9\\n'")])
    directory = report.write(run, tmp_path / "r")
    for f in directory.iterdir():
        assert "carols-Secret-9" not in f.read_text()
    assert "password of carol, 15 bytes" in (directory / "index.json").read_text()


@pytest.mark.parametrize("password", ["FAIL", "verdict", "20261205", "redirector"])
def test_a_password_that_is_one_of_the_reports_own_words_breaks_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, password: str) -> None:
    """Field names, verdicts, the start time, kinds and protocols are pamconform's words:
    a password equal to one renames no field (the run ended with a KeyError), blanks no
    verdict and leaves the start time ISO 8601; where data holds it, it is marked."""
    from pamconform.core import redaction

    red = redaction.Redactor()
    red.add_login(b"erin", password.encode())
    monkeypatch.setattr(redaction, "_CURRENT", red)
    run = report.Run(started=datetime(2026, 12, 5, 7, 20, 4, tzinfo=UTC),
                     targets=[_result(f"got a grant for b'erin\\n{password}\\n'")])
    directory = report.write(run, tmp_path / "r")
    data = json.loads((directory / "index.json").read_text())
    case = data["targets"][0]["cases"][0]
    assert case["verdict"] == "FAIL" and data["targets"][0]["summary"] == {"FAIL": 1}
    assert data["started"] == "2026-12-05T07:20:04+00:00"
    assert (data["targets"][0]["kind"], data["targets"][0]["protocol"]) == \
        ("server", "redirector")
    assert password not in case["message"] and "password of erin" in case["message"]
    junit = (directory / "junit.xml").read_text()
    assert 'timestamp="2026-12-05T07:20:04+00:00"' in junit and 'failures="1"' in junit


def test_a_local_servers_files_are_private() -> None:
    """Its directory is 0755 (the socket's own mode decides who connects), but the log and
    the credentials in it are the invoker's alone."""
    from pamconform.lab.localserver import LocalServer, reference_command
    from pamconform.protocols.redirector.hooks import REFERENCE_CREDENTIALS

    with LocalServer(reference_command(), REFERENCE_CREDENTIALS, name="private") as server:
        for path in (server.log_path, server.dir / "credentials"):
            assert path.stat().st_mode & 0o777 == 0o600, path
