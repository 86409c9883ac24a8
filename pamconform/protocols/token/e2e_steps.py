"""Steps of the transient-token module suite in the lab: mint tokens, fake servers, logins."""

from __future__ import annotations

import re
import secrets
import string

from pamconform.core.context import CaseContext
from pamconform.core.redaction import register_token
from pamconform.drivers.login import LoginResult
from pamconform.drivers.login_checks import expect_granted, path_time
from pamconform.lab.module_target import SERVERS, ModuleTarget

TOKEN_RE = re.compile(r"TTK(\d+):(\d+):([A-Za-z0-9+/]{32})")
#: The secret part of a token: its last 32 characters (the head ``TTK<uid>:<pid>:`` is public).
TOKEN_SECRET_CHARS = 32
B64 = string.ascii_letters + string.digits + "+/"

#: A stand-in token server: binds PATH with MODE, serves one connection (with "many": each,
#: until a quiet minute), records what the first sent in PATH.received, replies REPLY (hex)
#: or stays silent, then unlinks PATH if it is still its own socket.
FAKE = r"""
import os, socket, sys, time
path, mode, reply = sys.argv[1], int(sys.argv[2], 8), sys.argv[3]
many = sys.argv[4:] == ["many"]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
os.chmod(path, mode)
mine = os.stat(path).st_ino
s.listen(4)
s.settimeout(60)
first = True
try:
    while first or many:
        conn, _ = s.accept()
        conn.settimeout(3)
        data = b""
        try:
            while len(data) < 256:
                chunk = conn.recv(256)
                if not chunk:
                    break
                data += chunk
                if len(data) >= 40:
                    break
                conn.settimeout(0.5)  # a short token: what came is all
        except OSError:
            pass
        if first:
            with open(path + ".received", "wb") as f:
                f.write(data)
            first = False
        if reply == "silent":
            time.sleep(60)
        else:
            conn.sendall(bytes.fromhex(reply))
        conn.close()
except TimeoutError:
    pass
finally:
    if os.path.exists(path) and os.stat(path).st_ino == mine:
        os.unlink(path)
"""


def target(ctx: CaseContext) -> ModuleTarget:
    return ctx.target  # type: ignore[no-any-return]


def uid(t: ModuleTarget, user: str) -> int:
    return int(t.box.run(["id", "-u", user], timeout=5).out.strip())


def mint(t: ModuleTarget, user: str, lifetime: int = 30) -> str:
    """Run the reference token server as ``user``; return the token it printed."""
    res = t.box.run(["python3", f"{SERVERS}/token_server.py", "--timeout", str(lifetime)],
                     user=user, timeout=15)
    match = TOKEN_RE.search(res.out)
    if not match:
        raise RuntimeError("token_server.py printed no token (exit "
                           f"{res.exit_code}): {res.err.strip()[-300:]!r}")
    token = match.group(0)
    # a secret like any token a case obtains: never in a report, even if a module echoes it
    register_token(token.encode(), len(token) - TOKEN_SECRET_CHARS)
    return token


def fake_token(uid_: int, pid: int) -> str:
    return f"TTK{uid_}:{pid}:" + "".join(secrets.choice(B64) for _ in range(32))


def fake_server(t: ModuleTarget, path: str, *, user: str, reply: str, mode: str = "0600",
                via_symlink_from: str | None = None, many: bool = False) -> None:
    """Start FAKE as ``user`` at ``path`` (and link ``via_symlink_from`` to it): it answers
    ``reply`` to one connection (``many``: to each, until a minute passes with none) and
    keeps what the first sent in ``path.received``."""
    t.box.run(["rm", "-f", path, path + ".received"], timeout=5)
    t.box.start_daemon(["python3", "-c", FAKE, path, mode, reply, *(["many"] if many else [])],
                       user=user, log_path=None)
    if not t.box.wait_for(["test", "-S", path], timeout=10):
        raise RuntimeError(f"fake token server did not start at {path}")
    if via_symlink_from:
        t.box.run('rm -f "$2"; ln -s "$1" "$2"', args=[path, via_symlink_from],
                  user=user, timeout=5).check()


def received(t: ModuleTarget, path: str) -> bytes:
    res = t.box.run(["cat", path + ".received"], timeout=5)
    return res.stdout if res.ok else b""


def login(ctx: CaseContext, via: str, user: str, token: str, label: str,
          timeout: float | None = None) -> LoginResult:
    t = target(ctx)
    result = (t.su("mallory", user, token, timeout=timeout) if via == "su"
              else t.ssh(user, token, timeout=timeout))
    ctx.extra.setdefault("logins", []).append({"label": label, "via": via,
                                                **result.as_evidence()})
    return result


#: The pid part of the token whose socket never exists (no server: an instant denial).
NO_SERVER_PID = 4545


def no_server_time(ctx: CaseContext, via: str) -> float:
    """:func:`pamconform.drivers.login_checks.path_time` of a token with no server."""
    t = target(ctx)

    def deny() -> LoginResult:
        return login(ctx, via, "alice", fake_token(uid(t, "alice"), NO_SERVER_PID),
                     f"no server: the time {via} takes to deny at once")
    return path_time(ctx, via, deny)


def expect_alive(ctx: CaseContext, why: str) -> None:
    """su still logs alice in with a fresh token of hers (after a case that misbehaved)."""
    token = mint(target(ctx), "alice")
    expect_granted(login(ctx, "su", "alice", token, f"valid token {why}"),
                   f"a valid token login {why}")
