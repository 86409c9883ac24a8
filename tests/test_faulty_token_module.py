"""The faulty pam_transient_token build (no owner/SO_PEERCRED check) against a planted socket.

Both variants are built from the reference source by tests/fixtures/faulty_modules_token
into a temporary directory. Then, as root, a "planted" token server runs as uid 65534 in
a sticky world-writable directory (like /tmp) at the path a token for root names: the
faulty build sends it the token and takes its PASS; the reference build sends nothing.
Each PAM transaction runs in a subprocess (ctypes driver, pam_start_confdir with a
temporary confdir) with a hard timeout. No system PAM configuration is read or written.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "faulty_modules_token"
PAM_HEADER = Path("/usr/include/security/pam_modules.h")
ENTRY_POINTS = {"pam_sm_authenticate", "pam_sm_setcred", "pam_sm_acct_mgmt",
                "pam_sm_open_session", "pam_sm_close_session", "pam_sm_chauthtok"}
PAM_SUCCESS, PAM_AUTHINFO_UNAVAIL = 0, 9
NOBODY = 65534
TIMEOUT_S = 5.0

DRIVER = r'''
import ctypes, json, sys
from ctypes import CFUNCTYPE, POINTER, Structure, byref, c_char_p, c_int, c_size_t, c_void_p
spec = json.loads(sys.argv[1])
pam = ctypes.CDLL("libpam.so.0")
libc = ctypes.CDLL(None)
libc.calloc.restype, libc.calloc.argtypes = c_void_p, [c_size_t, c_size_t]
libc.strdup.restype, libc.strdup.argtypes = c_void_p, [c_char_p]
class Message(Structure):
    _fields_ = [("style", c_int), ("text", c_char_p)]
class Response(Structure):
    _fields_ = [("resp", c_void_p), ("retcode", c_int)]
CONV = CFUNCTYPE(c_int, c_int, POINTER(POINTER(Message)), POINTER(POINTER(Response)), c_void_p)
def answer(n, messages, responses, data):
    out = ctypes.cast(libc.calloc(n, ctypes.sizeof(Response)), POINTER(Response))
    for i in range(n):
        if messages[i].contents.style in (1, 2):
            out[i].resp = libc.strdup(spec["answer"].encode())
    responses[0] = out
    return 0
class Conv(Structure):
    _fields_ = [("conv", CONV), ("data", c_void_p)]
conv = Conv(CONV(answer), None)
handle = c_void_p()
pam.pam_start_confdir.argtypes = [c_char_p, c_char_p, POINTER(Conv), c_char_p,
                                  POINTER(c_void_p)]
pam.pam_authenticate.argtypes = [c_void_p, c_int]
pam.pam_end.argtypes = [c_void_p, c_int]
rc = pam.pam_start_confdir(b"tt", spec["user"].encode(), byref(conv),
                           spec["confdir"].encode(), byref(handle))
if rc == 0:
    rc = pam.pam_authenticate(handle, 0)
    pam.pam_end(handle, rc)
print(json.dumps({"rc": rc}))
'''



class Planted:
    """A token server planted by uid 65534: a forked child that drops to that uid, listens
    at ``path``, answers PASS to whoever connects, and reports what it received."""

    def __init__(self, path: Path, want: int) -> None:
        ready_r, ready_w = os.pipe()
        self.out_r, out_w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # pragma: no cover - child
            try:
                os.close(ready_r)
                os.close(self.out_r)
                self._serve(path, want, ready_w, out_w)
            finally:
                os._exit(0)
        os.close(ready_w)
        os.close(out_w)
        ready, _, _ = select.select([ready_r], [], [], TIMEOUT_S)
        status = os.read(ready_r, 16) if ready else b""
        os.close(ready_r)
        if status != b"ready":
            self.stop()
            raise RuntimeError("the planted server did not start")

    @staticmethod
    def _serve(path: Path, want: int, ready_w: int, out_w: int) -> None:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(str(path))
        s.listen(1)
        s.settimeout(TIMEOUT_S)
        os.write(ready_w, b"ready")
        conn, _ = s.accept()
        conn.settimeout(TIMEOUT_S)
        data = b""
        with contextlib.suppress(OSError):
            while len(data) < want:
                chunk = conn.recv(128)
                if not chunk:
                    break
                data += chunk
            os.write(out_w, data)  # before the reply: on record once the module returns
            conn.sendall(b"PASS\n\0")

    def stop(self) -> bytes:
        """Kill the server; what it received."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        data = b""
        while chunk := os.read(self.out_r, 4096):
            data += chunk
        os.close(self.out_r)
        return data


@pytest.fixture(scope="module")
def builds() -> Iterator[dict[str, Path]]:
    for tool in ("cc", "make", "nm"):
        if shutil.which(tool) is None:
            pytest.skip(f"`{tool}` is not on PATH")
    if not PAM_HEADER.exists():
        pytest.skip(f"PAM headers missing ({PAM_HEADER}): install libpam0g-dev")
    base = Path(tempfile.mkdtemp(prefix="pc-ftm-", dir="/tmp"))
    try:
        out = {}
        names = subprocess.run(["make", "-s", "-C", str(FIXTURE), "faults"], capture_output=True,
                               text=True, timeout=60, check=True).stdout.split()
        # every fault builds with -Werror (the lab tests only build the ones they run)
        for variant, fault in [("reference", []), *((n, [f"FAULT={n}"]) for n in names)]:
            built = subprocess.run(["make", "-C", str(FIXTURE), f"O={base / variant}", *fault],
                                   capture_output=True, text=True, timeout=120, check=False)
            assert built.returncode == 0, built.stdout + built.stderr
            assert "warning" not in built.stderr, built.stderr
            out[variant] = base / variant / "pam_transient_token.so"
        yield out
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_variants_export_only_the_entry_points(builds: dict[str, Path]) -> None:
    for module in builds.values():
        nm = subprocess.run(["nm", "-D", "--defined-only", str(module)], capture_output=True,
                            text=True, timeout=30, check=True)
        assert {line.split()[-1] for line in nm.stdout.splitlines() if line.strip()} \
            == ENTRY_POINTS


def test_unknown_fault_is_refused() -> None:
    if shutil.which("make") is None:
        pytest.skip("`make` is not on PATH")
    bad = subprocess.run(["make", "-C", str(FIXTURE), "FAULT=bogus", "O=/nonexistent"],
                         capture_output=True, text=True, timeout=60, check=False)
    assert bad.returncode != 0 and "unknown FAULT=bogus" in bad.stderr


def _planted_login(module: Path, work: Path) -> tuple[int | None, bytes]:
    """Log in as root with a token whose socket another user planted; (rc, what it got)."""
    sockdir = work / "tmp"
    sockdir.mkdir()
    os.chmod(sockdir, 0o1777)  # like /tmp: anyone may create, only owners remove
    os.chmod(work, 0o755)
    token = f"TTK0:4242:{base64.b64encode(secrets.token_bytes(24)).decode()}"
    path = sockdir / "transient-token-0-4242"
    planted = Planted(path, len(token))
    try:
        assert os.stat(path).st_uid == NOBODY
        confdir = work / "pam.d"
        confdir.mkdir()
        (confdir / "tt").write_text(
            f"auth required {module} socket_dir={sockdir} timeout=2 debug\n")
        spec = {"confdir": str(confdir), "user": "root", "answer": token}
        try:
            driver = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(spec)],
                                    capture_output=True, text=True, timeout=TIMEOUT_S,
                                    check=False)
            rc = json.loads(driver.stdout)["rc"] if driver.returncode == 0 else None
        except subprocess.TimeoutExpired:
            rc = None
    finally:
        received = planted.stop()
    return rc, received


@pytest.mark.skipif(os.geteuid() != 0, reason="planting a socket as another uid needs root")
@pytest.mark.parametrize("variant", ["reference", "no_peer_check"])
def test_planted_socket(builds: dict[str, Path], variant: str, short_dir: Path) -> None:
    rc, received = _planted_login(builds[variant], short_dir)
    if variant == "reference":
        assert (rc, received) == (PAM_AUTHINFO_UNAVAIL, b"")
    else:
        assert rc == PAM_SUCCESS and received.startswith(b"TTK0:4242:"), (rc, received)
