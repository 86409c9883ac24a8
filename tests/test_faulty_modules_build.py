"""Build every variant of the faulty-module gallery and smoke-test each defect.

The gallery (tests/fixtures/faulty_modules) is one C module, correct by default,
with one defect per `make FAULT=<name>`. Here each variant is built in a copy of
the source dir (the tree stays clean) with -Wall -Wextra -Werror, must export only
pam_sm_*, and is then driven on the host through libpam's pam_start_confdir()
(a temporary confdir naming the module by absolute path, server_uid=<our uid>),
against a Python socket server thread. Each PAM transaction runs in a subprocess
(ctypes driver) with a hard timeout, so a hanging or exiting variant cannot take
pytest with it. No system PAM configuration is read or written.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent / "fixtures" / "faulty_modules"
PAM_HEADER = Path("/usr/include/security/pam_modules.h")
FAULTS = json.loads((SRC / "faults.json").read_text())
NAMES = [f["name"] for f in FAULTS]
VARIANTS = ["correct", *NAMES]
STRICT = "-O2 -g -Wall -Wextra -Werror"
ENTRY_POINTS = {"pam_sm_authenticate", "pam_sm_setcred", "pam_sm_acct_mgmt",
                "pam_sm_open_session", "pam_sm_close_session", "pam_sm_chauthtok"}

# Linux-PAM values
PAM_SUCCESS, PAM_SERVICE_ERR, PAM_PERM_DENIED, PAM_AUTH_ERR = 0, 3, 6, 7
PAM_AUTHINFO_UNAVAIL, PAM_SILENT, PAM_TEXT_INFO, PAM_PROMPT_ECHO_OFF = 9, 0x8000, 4, 1

USER, PASSWORD = "alice", "s3cret-pw"
DRIVER_TIMEOUT_S = 3.0  # per PAM transaction; module args use timeout=1

DRIVER = r'''
import ctypes, json, sys
from ctypes import CFUNCTYPE, POINTER, Structure, byref, c_char_p, c_int, c_size_t, c_void_p
spec = json.loads(sys.argv[1])
pam = ctypes.CDLL("libpam.so.0")
libc = ctypes.CDLL(None)  # the malloc that libpam free()s (ASan-aware)
libc.calloc.restype, libc.calloc.argtypes = c_void_p, [c_size_t, c_size_t]
libc.strdup.restype, libc.strdup.argtypes = c_void_p, [c_char_p]
class Msg(Structure): _fields_ = [("style", c_int), ("msg", c_char_p)]
class Resp(Structure): _fields_ = [("resp", c_void_p), ("retcode", c_int)]
CONV = CFUNCTYPE(c_int, c_int, POINTER(POINTER(Msg)), POINTER(POINTER(Resp)), c_void_p)
class Conv(Structure): _fields_ = [("conv", CONV), ("appdata", c_void_p)]
seen = []
def conv(n, msgs, resp, _data):
    out = ctypes.cast(libc.calloc(n, ctypes.sizeof(Resp)), POINTER(Resp))
    if not out:
        return 5
    for i in range(n):
        m = msgs[i].contents
        seen.append([m.style, (m.msg or b"").decode(errors="replace")])
        if m.style in (1, 2):
            out[i].resp = libc.strdup(spec["answer"].encode())
    resp[0] = out
    return 0
c = Conv(CONV(conv), None)
pamh = c_void_p()
pam.pam_start_confdir.argtypes = [c_char_p, c_char_p, POINTER(Conv), c_char_p, POINTER(c_void_p)]
pam.pam_authenticate.argtypes = pam.pam_end.argtypes = [c_void_p, c_int]
rc = pam.pam_start_confdir(b"faulty", spec["user"].encode(), byref(c), spec["confdir"].encode(),
                           byref(pamh))
if rc:
    sys.exit("pam_start_confdir: %d" % rc)
rc = pam.pam_authenticate(pamh, spec["flags"])
pam.pam_end(pamh, rc)
print(json.dumps({"rc": rc, "conv": seen}), flush=True)
'''

# Prints what libpam sends to syslog on stderr (libpam calls __syslog_chk).
SYSLOG_SHIM = r'''
#include <stdarg.h>
#include <stdio.h>
static void out(int pri, const char *fmt, va_list ap)
{ fprintf(stderr, "SYSLOG<%d> ", pri); vfprintf(stderr, fmt, ap); fputc('\n', stderr); }
void __syslog_chk(int pri, int flag, const char *fmt, ...)
{ va_list ap; (void)flag; va_start(ap, fmt); out(pri, fmt, ap); va_end(ap); }
void syslog(int pri, const char *fmt, ...)
{ va_list ap; va_start(ap, fmt); out(pri, fmt, ap); va_end(ap); }
void vsyslog(int pri, const char *fmt, va_list ap) { out(pri, fmt, ap); }
'''


def _toolchain_or_skip() -> None:
    for tool in ("cc", "make", "nm"):
        if shutil.which(tool) is None:
            pytest.skip(f"`{tool}` is not on PATH")
    if not PAM_HEADER.exists():
        pytest.skip(f"PAM headers missing ({PAM_HEADER}): install libpam0g-dev")


@dataclass
class Build:
    dir: Path
    rc: int
    out: str

    @property
    def module(self) -> Path:
        return self.dir / "pam_faulty.so"


def _make(src: Path, dest: Path, fault: str, cflags: str) -> Build:
    shutil.copytree(src, dest)
    args = ["make", "-C", str(dest), f"CFLAGS={cflags}"]
    if fault != "correct":
        args.append(f"FAULT={fault}")
    try:
        r = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    except subprocess.TimeoutExpired:
        return Build(dest, -1, "make timed out")
    return Build(dest, r.returncode, r.stdout + r.stderr)


@pytest.fixture(scope="module")
def work() -> Iterator[Path]:
    _toolchain_or_skip()
    base = Path(tempfile.mkdtemp(prefix="pc-fm-", dir="/tmp"))
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def builds(work: Path) -> dict[str, Build]:
    src = work / "src"
    shutil.copytree(SRC, src, ignore=shutil.ignore_patterns("*.so", ".fault", "*.o"))
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 4) as pool:
        futures = {v: pool.submit(_make, src, work / v, v, STRICT) for v in VARIANTS}
        return {v: f.result() for v, f in futures.items()}


@pytest.fixture(scope="module")
def syslog_shim(work: Path) -> Path:
    (work / "shim.c").write_text(SYSLOG_SHIM)
    shim = work / "syslog_shim.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(shim), str(work / "shim.c")],
                   check=True, capture_output=True, timeout=60)
    return shim


# ---------------------------------------------------------------- static checks


def test_gallery_names_agree() -> None:
    """faults.json, the Makefile, the C source and the README name the same faults."""
    assert len(NAMES) == len(set(NAMES)) == 28
    for f in FAULTS:
        assert re.fullmatch(r"R-M[1-7]", f["rule"]) and f["defect"].endswith("."), f
    make_names = re.search(r"^FAULTS = (.*?)\n\n", (SRC / "Makefile").read_text(), re.S | re.M)
    assert make_names and make_names.group(1).replace("\\", " ").split() == NAMES
    source = (SRC / "pam_faulty.c").read_text()
    assert set(re.findall(r"FAULT_([A-Z_]+)", source)) == {n.upper() for n in NAMES}
    readme = (SRC / "README.md").read_text()
    for f in FAULTS:
        assert f"| `{f['name']}` | {f['rule']} |" in readme, f["name"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_variant_builds_clean(builds: dict[str, Build], variant: str) -> None:
    """-Wall -Wextra -Werror compiles clean; only the pam_sm_* entry points are exported."""
    b = builds[variant]
    assert b.rc == 0, b.out
    assert "warning" not in b.out, b.out
    nm = subprocess.run(["nm", "-D", "--defined-only", str(b.module)], capture_output=True,
                        text=True, timeout=30, check=True)
    exported = {line.split()[-1] for line in nm.stdout.splitlines() if line.strip()}
    assert exported == ENTRY_POINTS


def test_make_clean_and_unknown_fault(work: Path) -> None:
    d = work / "clean-check"
    shutil.copytree(SRC, d, ignore=shutil.ignore_patterns("*.so", ".fault", "*.o"))
    bad = subprocess.run(["make", "-C", str(d), "FAULT=bogus"], capture_output=True, text=True,
                         timeout=60, check=False)
    assert bad.returncode != 0 and "unknown FAULT=bogus" in bad.stderr
    subprocess.run(["make", "-C", str(d), "-s"], check=True, capture_output=True, timeout=60)
    assert (d / "pam_faulty.so").exists()
    subprocess.run(["make", "-C", str(d), "clean"], check=True, capture_output=True, timeout=60)
    assert sorted(p.name for p in d.iterdir()) == sorted(p.name for p in SRC.iterdir()
                                                        if p.name not in ("pam_faulty.so",
                                                                          ".fault"))


# ------------------------------------------------------------ behaviour on host


@dataclass
class Server:
    """A scripted UNIX socket server thread; records every request it reads."""

    path: Path
    reply: bytes | tuple[bytes, ...] | None  # None: never answer; a tuple: chunks, paused
    backlog_full: bool = False
    delay: float = 0.0  # seconds before the (first) reply
    requests: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(self.path))
        os.chmod(self.path, 0o600)
        self.clients: list[socket.socket] = []
        if self.backlog_full:  # never accept; fill the queue so connect() would block
            self.sock.listen(0)
            for _ in range(8):
                c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                c.setblocking(False)
                self.clients.append(c)
                try:
                    c.connect(str(self.path))
                except BlockingIOError:
                    break
            return
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(DRIVER_TIMEOUT_S + 2)
            data = b""
            try:
                while data.count(b"\n") < 2:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                self.requests.append(data)
                if self.reply is None:
                    conn.recv(1)  # until the client goes away (or our timeout)
                    return
                time.sleep(self.delay)
                chunks = self.reply if isinstance(self.reply, tuple) else (self.reply,)
                for i, chunk in enumerate(chunks):
                    if i:
                        time.sleep(0.2)
                    conn.sendall(chunk)
            except OSError:
                pass

    def close(self) -> None:
        if not self.backlog_full:
            self.stop.set()
            self.thread.join(2)
        for c in self.clients:
            c.close()
        self.sock.close()


@dataclass
class Outcome:
    rc: int | None  # pam_authenticate's result; None if the driver hung or died
    conv: list[list]  # [style, text] of each conversation message
    exit: int | None  # driver exit status; None when killed on timeout
    stderr: str
    requests: list[bytes]
    seconds: float

    @property
    def prompted(self) -> bool:
        return any(style == PAM_PROMPT_ECHO_OFF for style, _ in self.conv)

    @property
    def info(self) -> list[str]:
        return [text for style, text in self.conv if style == PAM_TEXT_INFO]


Runner = Callable[..., Outcome]


@pytest.fixture
def run(builds: dict[str, Build], work: Path) -> Iterator[Runner]:
    """run(variant, args="@SOCK@ ...", reply=b"0", ...) -> Outcome of one pam_authenticate."""
    driver = work / "driver.py"
    driver.write_text(DRIVER)
    tmp = Path(tempfile.mkdtemp(prefix="pc-", dir="/tmp"))  # short: sun_path is 108 bytes
    servers: list[Server] = []
    counter = itertools.count()

    def run_one(variant: str, args: str = "@SOCK@", *,
                reply: bytes | tuple[bytes, ...] | None = b"0", delay: float = 0.0,
                server: str = "normal", mode: int = 0o600, flags: int = 0,
                answer: str = PASSWORD, module: Path | None = None,
                env: dict[str, str] | None = None, first: str | None = None) -> Outcome:
        b = builds[variant]
        assert b.rc == 0, b.out
        n = next(counter)
        sock = tmp / f"s{n}"
        srv = None
        if server != "none":
            srv = Server(sock, reply, backlog_full=server == "backlog", delay=delay)
            servers.append(srv)
            os.chmod(sock, mode)
        confdir = tmp / f"conf{n}"
        confdir.mkdir()
        line = args.replace("@SOCK@", str(sock))
        stack = f"auth required {module or b.module} server_uid={os.getuid()} timeout=1 {line}\n"
        if first is not None:  # a line of the correct variant before it (it sets PAM_AUTHTOK)
            stack = (f"auth optional {builds['correct'].module} server_uid={os.getuid()} "
                     f"timeout=1 {first.replace('@SOCK@', str(sock))}\n{stack}")
        (confdir / "faulty").write_text(stack)
        spec = {"confdir": str(confdir), "user": USER, "answer": answer, "flags": flags}
        start = time.monotonic()
        proc = subprocess.Popen([sys.executable, str(driver), json.dumps(spec)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, text=True,
                                env={**os.environ, **(env or {})})
        try:
            out, err = proc.communicate(timeout=DRIVER_TIMEOUT_S)
            code: int | None = proc.returncode
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate(timeout=5)
            code = None
        seconds = time.monotonic() - start
        result = json.loads(out) if code == 0 and out.strip() else {"rc": None, "conv": []}
        return Outcome(result["rc"], result["conv"], code, err,
                       list(srv.requests) if srv else [], seconds)

    yield run_one
    for s in servers:
        s.close()
    shutil.rmtree(tmp, ignore_errors=True)


REQUEST = f"{USER}\n{PASSWORD}\n".encode()


def test_correct_variant_conforms(run: Runner) -> None:
    ok = run("correct", reply=b"0")
    assert (ok.rc, ok.requests) == (PAM_SUCCESS, [REQUEST]) and ok.prompted, ok
    assert ok.info == ["Authenticating with server..."]
    assert run("correct", reply=b"0\n").rc == PAM_SUCCESS
    for reply in (b"", b"1", b"OK", b"00", b" 0", b"0\r\n", b"0" * 64):
        o = run("correct", reply=reply)
        assert (o.rc, o.exit) == (PAM_AUTH_ERR, 0), (reply, o)
    assert run("correct", "debug").rc == PAM_SERVICE_ERR  # no socket argument
    assert run("correct", "@SOCK@ bogus_option").rc == PAM_SERVICE_ERR
    down = run("correct", server="none")
    assert (down.rc, down.exit) == (PAM_AUTHINFO_UNAVAIL, 0), down
    silent = run("correct", reply=None)
    assert silent.rc == PAM_AUTHINFO_UNAVAIL and silent.seconds < DRIVER_TIMEOUT_S, silent
    full = run("correct", server="backlog")
    assert full.rc == PAM_AUTHINFO_UNAVAIL and full.seconds < DRIVER_TIMEOUT_S, full
    first = run("correct", "@SOCK@ use_first_pass")
    assert (first.rc, first.prompted, first.requests) == (PAM_AUTH_ERR, False, []), first
    planted = run("correct", mode=0o666)
    assert (planted.rc, planted.requests) == (PAM_AUTHINFO_UNAVAIL, []), planted
    nl = run("correct", answer="pw\nalice")
    assert (nl.rc, nl.requests) == (PAM_AUTH_ERR, []), nl
    assert run("correct", flags=PAM_SILENT).info == []


def test_correct_variant_never_logs_password(run: Runner, syslog_shim: Path) -> None:
    o = run("correct", "@SOCK@ debug", env={"LD_PRELOAD": str(syslog_shim)})
    assert o.rc == PAM_SUCCESS and "SYSLOG<" in o.stderr and f"user={USER}" in o.stderr, o
    assert PASSWORD not in o.stderr


# Each fault's smoke check: the one deviation from the correct variant.


def test_grant_on_eof(run: Runner) -> None:
    assert run("grant_on_eof", reply=b"").rc == PAM_SUCCESS
    assert run("grant_on_eof", reply=b"OK").rc == PAM_AUTH_ERR


def test_grant_non_numeric(run: Runner) -> None:
    for reply in (b"OK", b"00", b" 0", b"-0", b"0x", b"0" * 64):
        assert run("grant_non_numeric", reply=reply).rc == PAM_SUCCESS, reply
    assert run("grant_non_numeric", reply=b"1").rc == PAM_AUTH_ERR


def test_grant_any_reply(run: Runner) -> None:
    assert run("grant_any_reply", reply=b"1").rc == PAM_SUCCESS
    assert run("grant_any_reply", reply=b"").rc == PAM_AUTH_ERR


def test_unreachable_success(run: Runner) -> None:
    assert run("unreachable_success", server="none").rc == PAM_SUCCESS


def test_read_overwrites(run: Runner) -> None:
    assert run("correct", reply=(b"1", b"0")).rc == PAM_AUTH_ERR
    assert run("read_overwrites", reply=(b"1", b"0")).rc == PAM_SUCCESS
    assert run("read_overwrites", reply=b"1").rc == PAM_AUTH_ERR


def test_newline_required(run: Runner) -> None:
    assert run("newline_required", reply=b"0").rc == PAM_AUTH_ERR
    assert run("newline_required", reply=b"0\n").rc == PAM_SUCCESS


def test_ignores_authtok(run: Runner) -> None:
    # the first line prompts and sets PAM_AUTHTOK; the second must use it, not ask again
    ok = run("correct", "@SOCK@ use_first_pass", first="@SOCK@")
    assert ok.rc == PAM_SUCCESS and len(ok.requests) == 2, ok
    o = run("ignores_authtok", "@SOCK@ use_first_pass", first="@SOCK@")
    assert o.rc == PAM_AUTH_ERR and len(o.requests) == 1, o


def test_ignores_unknown_options(run: Runner) -> None:
    assert run("ignores_unknown_options", "@SOCK@ bogus_option").rc == PAM_SUCCESS


def test_fixed_short_timeout(run: Runner) -> None:
    # the runner's line says timeout=1 first; the later timeout=2.5 wins in the correct one
    assert run("correct", "@SOCK@ timeout=2.5", delay=0.8).rc == PAM_SUCCESS
    o = run("fixed_short_timeout", "@SOCK@ timeout=2.5", delay=0.8)
    assert o.rc == PAM_AUTHINFO_UNAVAIL and o.seconds < 2, o


def test_missing_arg_success(run: Runner) -> None:
    assert run("missing_arg_success", "debug").rc == PAM_SUCCESS


def test_unreachable_ignore(run: Runner) -> None:
    o = run("unreachable_ignore", server="none")
    # PAM_IGNORE is not a result: alone in the stack libpam fails with PAM_PERM_DENIED,
    # but the module no longer says "unavailable" (with sufficient/optional it fails open).
    assert (o.rc, o.exit) == (PAM_PERM_DENIED, 0), o


def test_no_read_timeout(run: Runner) -> None:
    o = run("no_read_timeout", reply=None)
    assert o.exit is None and o.requests == [REQUEST], o  # killed after DRIVER_TIMEOUT_S


def test_no_connect_timeout(run: Runner) -> None:
    o = run("no_connect_timeout", server="backlog")
    assert o.exit is None, o


def test_exit_on_error(run: Runner) -> None:
    o = run("exit_on_error", server="none")
    assert (o.exit, o.rc) == (1, None), o


def test_oob_read(run: Runner, work: Path) -> None:
    libasan = subprocess.run(["cc", "-print-file-name=libasan.so"], capture_output=True,
                             text=True, timeout=30).stdout.strip()
    if not os.path.isabs(libasan):
        pytest.skip("no libasan: cannot observe the overflow without valgrind")
    b = _make(SRC, work / "oob_asan", "oob_read",
              "-O1 -g -fsanitize=address -fno-omit-frame-pointer")
    assert b.rc == 0, b.out
    env = {"LD_PRELOAD": libasan, "ASAN_OPTIONS": "detect_leaks=0"}
    o = run("correct", reply=b"X" * 64, module=b.module, env=env)  # the ASan oob_read build
    assert "heap-buffer-overflow" in o.stderr and o.rc is None, o.stderr[-2000:]
    assert run("oob_read", reply=b"0").rc == PAM_SUCCESS  # short replies still work


def test_double_free(run: Runner) -> None:
    assert run("correct", reply=b"1").exit == 0
    assert run("double_free", reply=b"1").exit == -6  # glibc: "free(): double free detected"
    assert run("double_free", reply=b"0").rc == PAM_SUCCESS  # a grant frees once


def test_overlap_copy(run: Runner) -> None:
    o = run("overlap_copy", "@SOCK@ debug", reply=b" 0")
    assert (o.rc, o.exit) == (PAM_AUTH_ERR, 0), o  # still a denial: only the copy is wrong


def test_no_prompt(run: Runner) -> None:
    o = run("no_prompt", reply=b"1")
    assert not o.prompted and o.requests == [f"{USER}\n\n".encode()], o


def test_ignores_use_first_pass(run: Runner) -> None:
    o = run("ignores_use_first_pass", "@SOCK@ use_first_pass")
    assert o.prompted and o.requests == [REQUEST], o


def test_ignore_without_password(run: Runner) -> None:
    """Alone in the stack its PAM_IGNORE is libpam's PAM_PERM_DENIED: the cases run it in
    the probe stack, where an ignore is the grant it turns into."""
    o = run("ignore_without_password", "@SOCK@ use_first_pass")
    assert o.rc == PAM_PERM_DENIED and not o.prompted and not o.requests, o
    o = run("correct", "@SOCK@ use_first_pass")
    assert o.rc == PAM_AUTH_ERR and not o.requests, o


def test_no_peer_check(run: Runner) -> None:
    o = run("no_peer_check", mode=0o666)
    assert o.requests == [REQUEST], o  # the password reached an other-writable socket


def test_newline_passthrough(run: Runner) -> None:
    o = run("newline_passthrough", answer="pw\nalice", reply=b"1")
    assert o.requests and o.requests[0].startswith(f"{USER}\npw\nalice".encode()), o


def test_logs_password(run: Runner, syslog_shim: Path) -> None:
    o = run("logs_password", env={"LD_PRELOAD": str(syslog_shim)})
    assert f"password={PASSWORD}" in o.stderr, o


def test_truncated_password(run: Runner) -> None:
    o = run("truncated_password")
    assert o.requests == [f"{USER}\n{PASSWORD[:-1]}\n".encode()], o


def test_ignores_silent(run: Runner) -> None:
    assert run("ignores_silent", flags=PAM_SILENT).info == ["Authenticating with server..."]
