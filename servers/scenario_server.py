#!/usr/bin/env python3
"""Scenario server: a redirector- or nslcd-protocol server that misbehaves on purpose.

Python standard library only, so it runs in any container with the distribution's
python3.  It listens on an AF_UNIX stream "auth socket" and plays, for every new
connection, the scenario currently selected through a control channel (the one set
when the connection is accepted); the choice is sticky until changed, so one server
process serves a whole module suite.

Usage::

    scenario_server.py AUTH_SOCKET --control CONTROL_SOCKET [--mode 0600]
        [--scenario grant] [--protocol redirector|nslcd]
    scenario_server.py AUTH_SOCKET --control -      # control on stdin/stdout

Control protocol: one JSON object per line in, one JSON object per line out.

    {"op": "set", "scenario": NAME, "args": {...}}  -> {"ok": true, "scenario": .., "args": ..}
    {"op": "log"}  (optional "wait": S, at most 10)  -> {"ok": true, "log": [RECORD, ...],
                                                        "dropped": N}
    {"op": "ping"}                                  -> {"ok": true, "scenario": .., "args": ..,
                                                        "open": N, "pid": N}
    {"op": "stop"}                                  -> {"ok": true}, then the server stops
    anything wrong                                  -> {"ok": false, "error": "..."}

``log`` returns the record of every connection made since the previous ``log``
(it first accepts those still waiting in the listen backlog) and forgets the
finished ones; a connection still open is reported with ``"closed_by": null`` and
reported again (updated) by the next ``log``.  With
``"wait": S`` it first waits up to S seconds for open connections to finish.  At
most 10000 records are kept between two ``log`` requests: when more connections
come, the finished records are dropped and counted in ``dropped``.  RECORD is::

    {"conn": N, "scenario": NAME, "args": {...}, "received_hex": HEX, "sent_hex": HEX,
     "closed_by": "client" | "server" | null, "peer_uid": N, "peer_gid": N,
     "peer_pid": N, "ms": DURATION, "client_shut_write": true (only when it did)}

``received_hex`` is every byte that reached the server's end of the connection,
including bytes left unread when it closed (taken with MSG_PEEK): this is the proof
that nothing, or no password, was sent.  ``closed_by`` is "client" when the server
saw the client close (or reset) before closing its own end. A client that only shuts
its write side (``shutdown(SHUT_WR)``) after the request is still there, waiting for the
reply: the scenario plays on (``client_shut_write``), so a module that half-closes
still has to bound its wait for a server that never answers.

With ``--control -`` the control lines are read from stdin and the replies written
to stdout (for ``docker exec -i``); end of stdin stops the server.  In both modes
the first stdout line is ``{"ok": true, "ready": true, "auth": PATH, "pid": N}``,
written once both sockets listen.  SIGTERM or SIGINT stops the server and unlinks
both sockets.

Scenarios (``args`` in brackets):

    grant                 read the request (to the 2nd newline, at most 64 KiB),
                          reply ``0``, close
    deny                  the same, reply ``1``
    close-before-read     close at once (a client that had already written gets
                          ECONNRESET rather than end of stream)
    close-after-request   read the request, close without replying
    reply-before-request  send ``0`` on accept, then read the request, close
    partial-reply         read, send ``1``, wait [gap=0.2] s, send ``0``, close: a
                          module reading one byte sees a deny, one reading to EOF ``10``
    malformed             read, send [reply: hex, required], close
    two-replies           read, send ``0``, wait [gap=0.05] s, send ``0``, close
    delay                 read, wait [seconds, required], send [reply: hex="30"], close
    silence               read, never reply nor close (until the client leaves)
    reset                 read, close with unread bytes pending (the client gets
                          ECONNRESET; SO_LINGER 0 is set too, it means nothing on AF_UNIX)
    accept-no-read        accept, never read nor close (until the client leaves)
    echo-peer             read, reply ``1`` (for planted-socket tests: see peer_uid)

With ``--protocol nslcd`` the auth socket speaks the nslcd protocol (pam_ldap's daemon):
a request is read to its last declared parameter (a negative or over-long string ends
the read), and the scenarios are:

    grant                 reply the action's entry with code SUCCESS (authc: the
                          requested user name, authz SUCCESS), close
    deny                  the same with AUTH_ERR
    empty                 reply with no entry (VERSION action RESULT_END): unknown user
    compose               read, send [parts, required] token by token, then [then=close]
                          close or "stall" (hold until the client leaves)
    close-before-read, close-after-request, reset, silence, accept-no-read
                          as for the redirector
    reply-before-request  send an authc grant on accept, naming ``user`` (a string,
                          default empty), then read the request, close
    delay                 read, wait [seconds, required], send the grant, close

``compose`` tokens (JSON lists): ["version"], ["action"] (the request's), ["begin"],
["end"], ["int", N], ["user"] (the requested name as a string), ["str", TEXT],
["big", N] (a string of N bytes, at most 16 MiB), ["raw", HEX], ["grant"] (the whole
grant reply), ["grant-cut", N] (its first N bytes).

Every wait is bounded: a connection is closed after at most 120 s, and all of them
when the server stops.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import select
import selectors
import signal
import socket
import stat
import struct
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: Upper bound on how long any connection is held.
MAX_HOLD_S = 120.0
#: Bytes read from one client at most (the rest is left unread).
READ_LIMIT = 64 * 1024
#: Bound on one send() of a reply.
SEND_TIMEOUT_S = 5.0
#: Bound on one control line.
CONTROL_LINE_MAX = 1024 * 1024
#: Connections held at once; later ones are closed at once and marked "overflow".
MAX_OPEN = 1000
MAX_LOG_WAIT_S = 10.0
#: Finished records kept between two "log" requests; older ones are dropped (counted).
MAX_RECORDS = 10000
SUN_PATH_MAX = 107

_POLL_IN = select.POLLIN | select.POLLPRI
# Not POLLRDHUP: a client that shuts only its write side (shutdown(SHUT_WR)) after the
# request is still there, waiting for the reply; the scenario goes on.
_POLL_HUP = select.POLLHUP | select.POLLERR


class ScenarioError(Exception):
    """Bad control request or start-up problem (one line, no traceback)."""


# --------------------------------------------------------------------------- connection


class Conn:
    """One accepted auth connection: primitives the scenarios are written with."""

    def __init__(self, sock: socket.socket, number: int, name: str, args: dict[str, Any],
                 stop_fd: int, complete: Callable[[bytes | bytearray], bool] | None = None
                 ) -> None:
        self.sock = sock
        #: whether the bytes so far hold a whole request (the protocol's framing)
        self.complete = complete or _complete
        self.number = number
        self.name = name
        self.args = args
        self.stop_fd = stop_fd
        self.received = bytearray()
        self.sent = bytearray()
        self.closed_by: str | None = None
        #: the client shut its write side (end of stream) but may still read the reply
        self.write_closed = False
        self.overflow = False
        self.started = time.monotonic()
        self.ended: float | None = None
        self.deadline = self.started + MAX_HOLD_S
        self.peer_pid, self.peer_uid, self.peer_gid = _peercred(sock)
        self.lock = threading.Lock()
        sock.setblocking(False)

    # -- waiting

    def _poll(self, timeout: float, events: int) -> str:
        """Wait for ``events``; return "ready", "hangup", "stop" or "timeout"."""
        end = min(self.deadline, time.monotonic() + max(0.0, timeout))
        poller = select.poll()
        poller.register(self.sock.fileno(), events | _POLL_HUP)
        poller.register(self.stop_fd, select.POLLIN)
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return "timeout"
            try:
                ready = poller.poll(left * 1000)
            except InterruptedError:
                continue
            for fd, _ev in ready:
                if fd == self.stop_fd:
                    return "stop"
            for _fd, ev in ready:
                if ev & events:
                    return "ready"
                if ev & (_POLL_HUP | select.POLLNVAL):
                    return "hangup"

    def _read_some(self, timeout: float) -> bool:
        """Read what arrives within ``timeout``; False once the client is gone or we stop."""
        if len(self.received) >= READ_LIMIT or self.write_closed:
            return self._wait_gone(timeout, read=False)
        state = self._poll(timeout, _POLL_IN)
        if state in ("stop",):
            return False
        if state == "timeout":
            return True
        try:
            chunk = self.sock.recv(min(4096, READ_LIMIT - len(self.received)))
        except BlockingIOError:
            return True
        except OSError:
            self._client_gone()
            return False
        if not chunk:  # end of stream: gone, or only done writing (a full close hangs up)
            self.write_closed = True
            return True
        with self.lock:
            self.received += chunk
        return True

    def _client_gone(self) -> None:
        if self.closed_by is None:
            self.closed_by = "client"

    def _wait_gone(self, timeout: float, *, read: bool) -> bool:
        """Wait ``timeout`` s; with ``read`` keep recording bytes. False if the client left."""
        end = min(self.deadline, time.monotonic() + timeout)
        while time.monotonic() < end:
            if read and len(self.received) < READ_LIMIT:
                if not self._read_some(end - time.monotonic()):
                    return False
                continue
            state = self._poll(end - time.monotonic(), 0)
            if state == "hangup":
                self._client_gone()
                return False
            if state in ("stop", "timeout"):
                return state == "timeout" and time.monotonic() < self.deadline
        return True

    # -- primitives

    def read_request(self) -> bool:
        """Read up to and including the second newline; False if that never came."""
        while not self.complete(self.received):
            if len(self.received) >= READ_LIMIT or time.monotonic() >= self.deadline or \
                    self.write_closed:  # nothing more will come
                return False
            if not self._read_some(self.deadline - time.monotonic()):
                return False
        return True

    def peek_request(self) -> bool:
        """Like read_request but leave the bytes unread (recorded at close)."""
        while time.monotonic() < self.deadline:
            data = self._peek()
            if data == b"":
                self._client_gone()
                return False
            if data is not None and self.complete(data):
                return True
            # Queued bytes keep POLLIN set: then only watch for a hang-up, briefly.
            state = self._poll(0.01 if data else self.deadline - time.monotonic(),
                               0 if data else _POLL_IN)
            if state == "stop":
                return False
            if state == "hangup":
                data = self._peek()
                if data and self.complete(data):
                    return True
                self._client_gone()
                return False
        return False

    def _peek(self) -> bytes | None:
        """Queued bytes without consuming them; None if none yet, b"" at end of stream."""
        try:
            return self.sock.recv(READ_LIMIT, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            return None
        except OSError:
            return b""

    def send(self, data: bytes) -> bool:
        """Send ``data`` whole (bounded); False if the client is gone."""
        view = memoryview(data)
        end = time.monotonic() + SEND_TIMEOUT_S
        while view:
            try:
                n = self.sock.send(view, socket.MSG_NOSIGNAL)
            except BlockingIOError:
                if self._poll(end - time.monotonic(), select.POLLOUT) != "ready":
                    return False
                continue
            except OSError:
                self._client_gone()
                return False
            with self.lock:
                self.sent += view[:n]
            view = view[n:]
        return True

    def pause(self, seconds: float) -> bool:
        """Wait, recording any bytes; False if the client left or the server stops."""
        return self._wait_gone(seconds, read=True)

    def hold(self, *, read: bool) -> None:
        """Keep the connection open until the client leaves, the bound, or stop."""
        self._wait_gone(MAX_HOLD_S, read=read)

    def close(self, *, reset: bool = False) -> None:
        """Record unread bytes, then close (``reset``: with SO_LINGER 0)."""
        if self.sock.fileno() < 0:
            return
        pending = self._peek()
        if pending:
            with self.lock:
                self.received += pending[: max(0, READ_LIMIT - len(self.received))]
        if reset:
            with contextlib.suppress(OSError):
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                     struct.pack("ii", 1, 0))
        if self.closed_by is None:
            self.closed_by = "server"
        self.sock.close()
        self.ended = time.monotonic()

    def record(self) -> dict[str, Any]:
        with self.lock:
            received, sent = bytes(self.received), bytes(self.sent)
        end = self.ended if self.ended is not None else time.monotonic()
        entry: dict[str, Any] = {
            "conn": self.number,
            "scenario": self.name,
            "args": self.args,
            "received_hex": received.hex(),
            "sent_hex": sent.hex(),
            "closed_by": self.closed_by if self.ended is not None else None,
            "peer_uid": self.peer_uid,
            "peer_gid": self.peer_gid,
            "peer_pid": self.peer_pid,
            "ms": round((end - self.started) * 1000, 3),
        }
        if self.write_closed:
            entry["client_shut_write"] = True
        if self.overflow:
            entry["overflow"] = True
        return entry


def _complete(data: bytes | bytearray) -> bool:
    """Whether ``data`` holds a whole request (two lines) or reached the read limit."""
    return data.count(b"\n") >= 2 or len(data) >= READ_LIMIT


def _peercred(sock: socket.socket) -> tuple[int, int, int]:
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid, uid, gid = struct.unpack("3i", raw)
    except OSError:
        return -1, -1, -1
    return pid, uid, gid


# --------------------------------------------------------------------------- scenarios


Play = Callable[[Conn], None]


@dataclass(frozen=True)
class Scenario:
    """A named behaviour, and the arguments it takes (name -> validator)."""

    play: Play
    required: dict[str, Callable[[Any], Any]] = field(default_factory=dict)
    optional: dict[str, tuple[Callable[[Any], Any], Any]] = field(default_factory=dict)

    def check_args(self, args: dict[str, Any]) -> dict[str, Any]:
        unknown = set(args) - set(self.required) - set(self.optional)
        if unknown:
            raise ScenarioError(f"unknown argument(s): {', '.join(sorted(unknown))}")
        out: dict[str, Any] = {}
        for key, check in self.required.items():
            if key not in args:
                raise ScenarioError(f"missing argument: {key}")
            out[key] = _checked(key, check, args[key])
        for key, (check, default) in self.optional.items():
            out[key] = _checked(key, check, args.get(key, default))
        return out


def _checked(key: str, check: Callable[[Any], Any], value: Any) -> Any:
    try:
        return check(value)
    except (TypeError, ValueError) as exc:
        raise ScenarioError(f"bad argument {key}: {exc}") from None


def _hex(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("expected a hex string")
    data = bytes.fromhex(value)
    if len(data) > READ_LIMIT:
        raise ValueError(f"over {READ_LIMIT} bytes")
    return value.lower()


def _seconds(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError("expected a number of seconds")
    if not 0 <= value <= MAX_HOLD_S:
        raise ValueError(f"must be between 0 and {MAX_HOLD_S:.0f}")
    return float(value)


def _reply_then_close(reply: bytes) -> Play:
    def play(conn: Conn) -> None:
        if conn.read_request():
            conn.send(reply)

    return play


def _malformed(conn: Conn) -> None:
    if conn.read_request():
        conn.send(bytes.fromhex(conn.args["reply"]))


def _close_before_read(conn: Conn) -> None:
    pass


def _close_after_request(conn: Conn) -> None:
    conn.read_request()


def _reply_before_request(conn: Conn) -> None:
    if conn.send(b"0"):
        conn.read_request()


def _partial_reply(conn: Conn) -> None:
    if conn.read_request() and conn.send(b"1") and conn.pause(conn.args["gap"]):
        conn.send(b"0")


def _two_replies(conn: Conn) -> None:
    if conn.read_request() and conn.send(b"0") and conn.pause(conn.args["gap"]):
        conn.send(b"0")


def _delay(conn: Conn) -> None:
    if conn.read_request() and conn.pause(conn.args["seconds"]):
        conn.send(bytes.fromhex(conn.args["reply"]))


def _silence(conn: Conn) -> None:
    if conn.read_request():
        conn.hold(read=True)


def _reset(conn: Conn) -> None:
    if conn.peek_request():
        # Consume all but the last byte: AF_UNIX signals ECONNRESET to the peer only
        # when the closing end still has unread data.
        pending = conn._peek() or b""
        if len(pending) > 1:
            with contextlib.suppress(OSError), conn.lock:
                conn.received += conn.sock.recv(len(pending) - 1)


def _accept_no_read(conn: Conn) -> None:
    conn.hold(read=False)


SCENARIOS: dict[str, Scenario] = {
    "grant": Scenario(_reply_then_close(b"0")),
    "deny": Scenario(_reply_then_close(b"1")),
    "close-before-read": Scenario(_close_before_read),
    "close-after-request": Scenario(_close_after_request),
    "reply-before-request": Scenario(_reply_before_request),
    "partial-reply": Scenario(_partial_reply, optional={"gap": (_seconds, 0.2)}),
    "malformed": Scenario(_malformed, required={"reply": _hex}),
    "two-replies": Scenario(_two_replies, optional={"gap": (_seconds, 0.05)}),
    "delay": Scenario(_delay, required={"seconds": _seconds},
                      optional={"reply": (_hex, "30")}),
    "silence": Scenario(_silence),
    "reset": Scenario(_reset),
    "accept-no-read": Scenario(_accept_no_read),
    "echo-peer": Scenario(_reply_then_close(b"1")),
}
#: Scenarios whose close is a reset.
_RESETS = {"reset"}


# --------------------------------------------------------------------------- nslcd
#
# The nslcd protocol (pam_ldap <-> nslcd), written out here again on purpose: this file
# must stay standalone (standard library, copied into containers), so it mirrors
# pamconform/protocols/nslcd/codec.py instead of importing it.  Every integer is a
# big-endian int32; a string is its int32 length and that many bytes.
#   request = VERSION action parameters...
#   reply   = VERSION action { RESULT_BEGIN entry }* RESULT_END

NSLCD_VERSION = 2
NSLCD_BEGIN = 1
NSLCD_END = 2
NSLCD_AUTHC = 0x000D0001
NSLCD_AUTHZ = 0x000D0002
NSLCD_SESS_O = 0x000D0003
NSLCD_SESS_C = 0x000D0004
NSLCD_PWMOD = 0x000D0005
NSLCD_CONFIG_GET = 0x00010001
#: The parameters of each request after the header: "s" a string, "i" an int32.  The
#: PAM actions start with five strings (user, service, ruser, rhost, tty).
NSLCD_REQUEST_SHAPE = {
    NSLCD_AUTHC: "ssssss",      # ... password
    NSLCD_AUTHZ: "sssss",
    NSLCD_SESS_O: "sssss",
    NSLCD_SESS_C: "ssssss",     # ... session id
    NSLCD_PWMOD: "sssssiss",    # ... asroot, old password, new password
    NSLCD_CONFIG_GET: "i",
}
PAM_SUCCESS, PAM_PERM_DENIED, PAM_AUTH_ERR = 0, 6, 7
#: What a scenario's "big" string may ask for at most.
NSLCD_BIG_MAX = 16 * 1024 * 1024


def nslcd_int(value: int) -> bytes:
    return struct.pack(">i", value)


def nslcd_str(data: bytes) -> bytes:
    return struct.pack(">i", len(data)) + data


def nslcd_parse(data: bytes | bytearray) -> tuple[str, int | None, list[Any]]:
    """(state, action, fields) of a request: state "partial", "complete" or "bad".

    "bad" is a request that can never complete (a negative or over-long string);
    an unknown action is complete after its header.
    """
    if len(data) < 8:
        return "partial", None, []
    _version, action = struct.unpack(">ii", bytes(data[:8]))
    at, fields = 8, []
    for kind in NSLCD_REQUEST_SHAPE.get(action, ""):
        if len(data) < at + 4:
            return "partial", action, fields
        (word,) = struct.unpack(">i", bytes(data[at:at + 4]))
        at += 4
        if kind == "i":
            fields.append(word)
            continue
        if word < 0 or word > READ_LIMIT:
            return "bad", action, fields
        if len(data) < at + word:
            return "partial", action, fields
        fields.append(bytes(data[at:at + word]))
        at += word
    return "complete", action, fields


def nslcd_complete(data: bytes | bytearray) -> bool:
    """Whether ``data`` holds a whole nslcd request (or never will, or reached the limit)."""
    return nslcd_parse(data)[0] != "partial" or len(data) >= READ_LIMIT


def _nslcd_asked(conn: Conn) -> tuple[int, bytes]:
    """The action and the user name of the request read so far (AUTHC and empty if none)."""
    _state, action, fields = nslcd_parse(conn.received)
    user = fields[0] if fields and isinstance(fields[0], bytes) else b""
    return (NSLCD_AUTHC if action is None else action), user


def _nslcd_entry(action: int, user: bytes, code: int) -> bytes:
    """The entry a daemon answers ``action`` with, carrying ``code`` where it has one."""
    if action == NSLCD_AUTHC:
        return nslcd_int(code) + nslcd_str(user) + nslcd_int(code) + nslcd_str(b"")
    if action in (NSLCD_AUTHZ, NSLCD_PWMOD):
        return nslcd_int(code) + nslcd_str(b"")
    if action == NSLCD_SESS_O:
        return nslcd_str(b"pc-session")
    if action == NSLCD_CONFIG_GET:
        return nslcd_str(b"")
    return b""  # SESS_C: an empty entry


def _nslcd_reply(action: int, user: bytes, code: int) -> bytes:
    if action not in NSLCD_REQUEST_SHAPE:
        return nslcd_int(NSLCD_VERSION) + nslcd_int(action) + nslcd_int(NSLCD_END)
    return (nslcd_int(NSLCD_VERSION) + nslcd_int(action) + nslcd_int(NSLCD_BEGIN)
            + _nslcd_entry(action, user, code) + nslcd_int(NSLCD_END))


def _nslcd_compose(conn: Conn, parts: list[list[Any]]) -> bytes:
    """The bytes a "compose" scenario sends, token by token (see the module docstring)."""
    action, user = _nslcd_asked(conn)
    out = bytearray()
    for token in parts:
        name, args = token[0], token[1:]
        if name == "version":
            out += nslcd_int(NSLCD_VERSION)
        elif name == "action":
            out += nslcd_int(action)
        elif name == "begin":
            out += nslcd_int(NSLCD_BEGIN)
        elif name == "end":
            out += nslcd_int(NSLCD_END)
        elif name == "int":
            out += nslcd_int(args[0])
        elif name == "user":
            out += nslcd_str(user)
        elif name == "str":
            out += nslcd_str(args[0].encode())
        elif name == "big":
            out += nslcd_str(b"A" * args[0])
        elif name == "raw":
            out += bytes.fromhex(args[0])
        elif name == "grant":
            out += _nslcd_reply(action, user, PAM_SUCCESS)
        elif name == "grant-cut":
            out += _nslcd_reply(action, user, PAM_SUCCESS)[: args[0]]
    return bytes(out)


#: compose tokens -> the types of their arguments
_NSLCD_TOKENS: dict[str, tuple[type, ...]] = {
    "version": (), "action": (), "begin": (), "end": (), "user": (), "grant": (),
    "int": (int,), "str": (str,), "big": (int,), "raw": (str,), "grant-cut": (int,),
}


def _parts(value: Any) -> list[list[Any]]:
    if not isinstance(value, list) or not value:
        raise TypeError("expected a non-empty list of tokens")
    out: list[list[Any]] = []
    for token in value:
        if not isinstance(token, list) or not token or token[0] not in _NSLCD_TOKENS:
            raise ValueError(f"bad token {token!r}; known: {', '.join(_NSLCD_TOKENS)}")
        types = _NSLCD_TOKENS[token[0]]
        args = token[1:]
        if len(args) != len(types) or not all(
                isinstance(a, t) and not isinstance(a, bool)
                for a, t in zip(args, types, strict=True)):
            raise ValueError(f"token {token!r}: expected {len(types)} argument(s)")
        if token[0] == "int" and not -2**31 <= args[0] < 2**31:
            raise ValueError(f"token {token!r}: not an int32")
        if token[0] == "big" and not 0 <= args[0] <= NSLCD_BIG_MAX:
            raise ValueError(f"token {token!r}: between 0 and {NSLCD_BIG_MAX}")
        if token[0] == "raw":
            _hex(args[0])
        out.append(list(token))
    return out


def _then(value: Any) -> str:
    if value not in ("close", "stall"):
        raise ValueError("expected close or stall")
    return str(value)


def _nslcd_answer(code: int) -> Play:
    def play(conn: Conn) -> None:
        if conn.read_request():
            conn.send(_nslcd_reply(*_nslcd_asked(conn), code))

    return play


def _nslcd_empty(conn: Conn) -> None:
    if conn.read_request():
        action, _user = _nslcd_asked(conn)
        conn.send(nslcd_int(NSLCD_VERSION) + nslcd_int(action) + nslcd_int(NSLCD_END))


def _nslcd_compose_play(conn: Conn) -> None:
    if not conn.read_request():
        return
    if conn.send(_nslcd_compose(conn, conn.args["parts"])) and conn.args["then"] == "stall":
        conn.hold(read=True)


def _user_name(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("expected a user name")
    if len(value.encode()) > READ_LIMIT:
        raise ValueError(f"over {READ_LIMIT} bytes")
    return value


def _nslcd_reply_before_request(conn: Conn) -> None:
    # named as the login will be: a module that checks the name still takes it, so only
    # one that looks for bytes before it writes its request refuses it
    if conn.send(_nslcd_reply(NSLCD_AUTHC, conn.args["user"].encode(), PAM_SUCCESS)):
        conn.read_request()


def _nslcd_delay(conn: Conn) -> None:
    if conn.read_request() and conn.pause(conn.args["seconds"]):
        conn.send(_nslcd_reply(*_nslcd_asked(conn), PAM_SUCCESS))


NSLCD_SCENARIOS: dict[str, Scenario] = {
    "grant": Scenario(_nslcd_answer(PAM_SUCCESS)),
    "deny": Scenario(_nslcd_answer(PAM_AUTH_ERR)),
    "empty": Scenario(_nslcd_empty),
    "compose": Scenario(_nslcd_compose_play, required={"parts": _parts},
                        optional={"then": (_then, "close")}),
    "close-before-read": Scenario(_close_before_read),
    "close-after-request": Scenario(_close_after_request),
    "reply-before-request": Scenario(_nslcd_reply_before_request,
                                     optional={"user": (_user_name, "")}),
    "delay": Scenario(_nslcd_delay, required={"seconds": _seconds}),
    "silence": Scenario(_silence),
    "reset": Scenario(_reset),
    "accept-no-read": Scenario(_accept_no_read),
}
#: The scenario tables and request framings by protocol (--protocol).
PROTOCOLS: dict[str, tuple[dict[str, Scenario], Callable[[bytes | bytearray], bool]]] = {
    "redirector": (SCENARIOS, _complete),
    "nslcd": (NSLCD_SCENARIOS, nslcd_complete),
}


# --------------------------------------------------------------------------- server


class ScenarioServer:
    """Auth socket + control channel; one thread per auth connection."""

    def __init__(self, auth_path: str, control: str, *, mode: int = 0o600,
                 scenario: str = "grant", protocol: str = "redirector") -> None:
        self.auth_path = auth_path
        self.control = control
        self.mode = mode
        self.scenarios, self.complete = PROTOCOLS[protocol]
        if scenario not in self.scenarios:
            raise ScenarioError(f"unknown {protocol} scenario: {scenario!r}")
        self.scenario = scenario
        self.args = self.scenarios[scenario].check_args({})
        self.state_lock = threading.Lock()
        self.conns: list[Conn] = []
        self.count = 0
        self.dropped = 0
        self.threads: set[threading.Thread] = set()
        self.stop_r, self.stop_w = os.pipe()
        self.stopping = threading.Event()
        self.changed = threading.Condition(self.state_lock)
        self.owned: list[tuple[str, int, int]] = []
        self.auth_sock: socket.socket | None = None
        self.ctl_sock: socket.socket | None = None

    # -- sockets

    def _listen(self, path: str, mode: int) -> socket.socket:
        if len(os.fsencode(path)) > SUN_PATH_MAX:
            raise ScenarioError(f"socket path too long for sun_path: {path}")
        self._clear_stale(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o777 & ~mode)
        try:
            sock.bind(path)
        except OSError as exc:
            sock.close()
            raise ScenarioError(f"cannot bind {path}: {exc.strerror}") from None
        finally:
            os.umask(old)
        os.chmod(path, mode)
        st = os.lstat(path)
        self.owned.append((path, st.st_dev, st.st_ino))
        sock.listen(128)
        sock.setblocking(False)
        return sock

    @staticmethod
    def _clear_stale(path: str) -> None:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(st.st_mode):
            raise ScenarioError(f"{path} exists and is not a socket")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(1)
            try:
                probe.connect(path)
            except (ConnectionRefusedError, FileNotFoundError):  # stale, or already gone
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
                return
            except OSError as exc:  # a full backlog, no permission, a timeout: maybe live
                raise ScenarioError(f"{path}: cannot tell whether a server listens there "
                                    f"({exc.strerror or exc}); not removing it") from None
        raise ScenarioError(f"{path}: a server is already listening")

    def _unlink_owned(self) -> None:
        for path, dev, ino in self.owned:
            with contextlib.suppress(OSError):
                st = os.lstat(path)
                if (st.st_dev, st.st_ino) == (dev, ino):
                    os.unlink(path)
        self.owned.clear()

    # -- control

    def handle(self, line: bytes) -> dict[str, Any]:
        """Answer one control line."""
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise ScenarioError("expected a JSON object")
            return self._dispatch(request)
        except ScenarioError as exc:
            return {"ok": False, "error": str(exc)}
        except (ValueError, RecursionError) as exc:  # RecursionError: JSON nested too deep
            return {"ok": False, "error": f"bad JSON: {exc}"}

    def _dispatch(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        if op == "ping":
            with self.state_lock:
                open_now = sum(1 for c in self.conns if c.ended is None)
                return {"ok": True, "scenario": self.scenario, "args": self.args,
                        "open": open_now, "pid": os.getpid()}
        if op == "set":
            name = request.get("scenario")
            if not isinstance(name, str) or name not in self.scenarios:
                raise ScenarioError(f"unknown scenario: {name!r}; "
                                    f"known: {', '.join(self.scenarios)}")
            args = request.get("args") or {}
            if not isinstance(args, dict):
                raise ScenarioError("args must be an object")
            checked = self.scenarios[name].check_args(args)
            with self.state_lock:
                self.scenario, self.args = name, checked
            return {"ok": True, "scenario": name, "args": checked}
        if op == "log":
            wait = request.get("wait", 0)
            try:
                wait = min(_seconds(wait), MAX_LOG_WAIT_S)
            except (TypeError, ValueError) as exc:
                raise ScenarioError(f"bad wait: {exc}") from None
            log, dropped = self._take_log(wait)
            return {"ok": True, "log": log, "dropped": dropped}
        if op == "stop":
            self.stop()
            return {"ok": True}
        raise ScenarioError(f"unknown op: {op!r}")

    def _take_log(self, wait: float) -> tuple[list[dict[str, Any]], int]:
        end = time.monotonic() + wait
        # Connections still in the listen backlog (a client may have connected, sent
        # and left already) are accepted first, so that they are in this log.
        self._accept()
        with self.changed:
            while any(c.ended is None for c in self.conns):
                left = end - time.monotonic()
                if left <= 0:
                    break
                self.changed.wait(left)
            records = [c.record() for c in self.conns]
            self.conns = [c for c in self.conns if c.ended is None]
            dropped, self.dropped = self.dropped, 0
        return records, dropped

    # -- auth connections

    def _accept(self) -> None:
        assert self.auth_sock is not None
        while True:
            try:
                sock, _ = self.auth_sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    time.sleep(0.05)
                return
            with self.state_lock:
                self.count += 1
                conn = Conn(sock, self.count, self.scenario, dict(self.args), self.stop_r,
                            self.complete)
                if len(self.conns) >= MAX_RECORDS:
                    kept = [c for c in self.conns if c.ended is None]
                    self.dropped += len(self.conns) - len(kept)
                    self.conns = kept
                self.conns.append(conn)
                open_now = sum(1 for t in self.threads if t.is_alive())
            if open_now >= MAX_OPEN:
                conn.overflow = True
                self._finish(conn, _close_before_read)
                continue
            thread = threading.Thread(target=self._finish,
                                      args=(conn, self.scenarios[conn.name].play), daemon=True)
            with self.state_lock:
                self.threads = {t for t in self.threads if t.is_alive()}
                self.threads.add(thread)
            try:
                thread.start()
            except RuntimeError:  # no thread to be had: closed at once, as an overflow
                conn.overflow = True
                self._finish(conn, _close_before_read)

    def _finish(self, conn: Conn, play: Play) -> None:
        try:
            play(conn)
        except Exception as exc:  # a scenario bug must not kill the server
            print(f"scenario_server: conn {conn.number}: {exc!r}", file=sys.stderr, flush=True)
        finally:
            conn.close(reset=conn.name in _RESETS and not conn.overflow)
            with self.changed:
                self.changed.notify_all()

    # -- main loop

    def stop(self) -> None:
        if not self.stopping.is_set():
            self.stopping.set()
            with contextlib.suppress(OSError):
                os.write(self.stop_w, b"x")

    def run(self) -> None:
        """Listen, serve until stopped, then close and unlink everything."""
        sel = selectors.DefaultSelector()
        ctl_buffers: dict[int, tuple[socket.socket, bytearray]] = {}
        stdin_buf = bytearray()
        acceptor: threading.Thread | None = None
        try:
            self.auth_sock = self._listen(self.auth_path, self.mode)
            if self.control == "-":
                sel.register(0, selectors.EVENT_READ, "stdin")
            else:
                self.ctl_sock = self._listen(self.control, 0o600)
                sel.register(self.ctl_sock, selectors.EVENT_READ, "ctl")
            sel.register(self.stop_r, selectors.EVENT_READ, "stop")
            # Accepting has its own thread so that a "log" waiting for connections
            # to finish never delays new ones.
            acceptor = threading.Thread(target=self._accept_loop, daemon=True)
            acceptor.start()
            self._emit({"ok": True, "ready": True, "auth": self.auth_path, "pid": os.getpid()})
            while not self.stopping.is_set():
                for key, _ in sel.select(timeout=1.0):
                    if key.data == "ctl":
                        self._accept_control(sel, ctl_buffers)
                    elif key.data == "stdin":
                        if not self._read_stdin(stdin_buf):
                            self.stop()
                    elif key.data == "ctlconn":
                        self._read_control(sel, key.fileobj, ctl_buffers)  # type: ignore[arg-type]
        finally:
            self.stop()
            if acceptor is not None:
                acceptor.join(3)
            for sock, _ in ctl_buffers.values():
                sock.close()
            sel.close()
            for listener in (self.auth_sock, self.ctl_sock):
                if listener is not None:
                    listener.close()
            self._unlink_owned()
            deadline = time.monotonic() + 3
            for thread in list(self.threads):
                thread.join(max(0.0, deadline - time.monotonic()))

    def _accept_loop(self) -> None:
        assert self.auth_sock is not None
        with selectors.DefaultSelector() as sel:
            sel.register(self.auth_sock, selectors.EVENT_READ, "auth")
            sel.register(self.stop_r, selectors.EVENT_READ, "stop")
            while not self.stopping.is_set():
                for key, _ in sel.select(timeout=1.0):
                    if key.data == "auth":
                        self._accept()

    def _emit(self, obj: dict[str, Any]) -> None:
        data = (json.dumps(obj) + "\n").encode()
        with contextlib.suppress(OSError):
            while data:
                data = data[os.write(1, data):]

    def _read_stdin(self, buf: bytearray) -> bool:
        # stdin stays blocking (its flags may be shared with the parent); select said
        # it is readable, so one read() does not block.
        try:
            chunk = os.read(0, 65536)
        except BlockingIOError:
            return True
        except OSError:
            return False
        if not chunk:
            return False
        buf += chunk
        while b"\n" in buf:
            line, _, rest = bytes(buf).partition(b"\n")
            buf[:] = rest
            if line.strip():
                self._emit(self.handle(line))
        if len(buf) > CONTROL_LINE_MAX:
            buf.clear()
            self._emit({"ok": False, "error": "control line too long"})
        return True

    def _accept_control(self, sel: selectors.BaseSelector,
                        buffers: dict[int, tuple[socket.socket, bytearray]]) -> None:
        assert self.ctl_sock is not None
        try:
            sock, _ = self.ctl_sock.accept()
        except OSError:
            return
        sock.setblocking(False)
        buffers[sock.fileno()] = (sock, bytearray())
        sel.register(sock, selectors.EVENT_READ, "ctlconn")

    def _read_control(self, sel: selectors.BaseSelector, sock: socket.socket,
                      buffers: dict[int, tuple[socket.socket, bytearray]]) -> None:
        _, buf = buffers[sock.fileno()]
        try:
            chunk = sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        buf += chunk
        replies = []
        while b"\n" in buf:
            line, _, rest = bytes(buf).partition(b"\n")
            buf[:] = rest
            if line.strip():
                replies.append(json.dumps(self.handle(line)) + "\n")
        if replies:
            sock.settimeout(SEND_TIMEOUT_S)
            try:
                sock.sendall("".join(replies).encode())
            except OSError:
                chunk = b""
            sock.setblocking(False)
        if not chunk or len(buf) > CONTROL_LINE_MAX:
            sel.unregister(sock)
            del buffers[sock.fileno()]
            sock.close()


# --------------------------------------------------------------------------- CLI


def _mode(text: str) -> int:
    try:
        value = int(text, 8)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an octal mode: {text}") from None
    if not 0 <= value <= 0o777:
        raise argparse.ArgumentTypeError(f"mode out of range: {text}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="A redirector- or nslcd-protocol server that plays a scenario chosen per "
        "connection.")
    parser.add_argument("auth_socket", help="path of the auth socket to listen on")
    parser.add_argument("--control", required=True,
                        help="control socket path, or - for stdin/stdout")
    parser.add_argument("--mode", type=_mode, default=0o600,
                        help="auth socket mode, octal (default 0600)")
    parser.add_argument("--protocol", default="redirector", choices=sorted(PROTOCOLS),
                        help="the protocol spoken on the auth socket (default redirector)")
    parser.add_argument("--scenario", default="grant",
                        choices=sorted(set(SCENARIOS) | set(NSLCD_SCENARIOS)),
                        help="initial scenario (default grant)")
    opts = parser.parse_args(argv)
    try:
        server = ScenarioServer(opts.auth_socket, opts.control, mode=opts.mode,
                                scenario=opts.scenario, protocol=opts.protocol)
    except ScenarioError as exc:
        print(f"scenario_server: {exc}", file=sys.stderr)
        return 2

    def on_signal(_signum: int, _frame: object) -> None:
        server.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    try:
        server.run()
    except ScenarioError as exc:
        print(f"scenario_server: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
