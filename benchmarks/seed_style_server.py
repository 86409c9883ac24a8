#!/usr/bin/env python3
"""A server built the way pam_redirector's example server is built, for benchmarks.

Written from the *design* of that example server (docs/protocols.md, "How the
original module really behaves"), not from its code: a ``socketserver`` threaded UNIX
stream server; each connection's handler reads the user line and the password line
with a 512-byte limit each, strips whitespace from both, lowercases the user, compares
with a plaintext table and replies ``0`` (grant) or ``1`` (deny), then the connection
closes.

One deliberate difference: the example sleeps 45 s before every failure reply (a crude
brake on guessing). That sleep would make any throughput figure for denials
meaningless (one denial per 45 s per thread), so this port leaves it out; pass
``--fail-sleep 45`` to get it back.

It is *not* conforming (it normalises credentials, has no read timeout, no peer
check, a world-connectable socket): it is here only as the speed the seed's users
start from.

    seed_style_server.py SOCKET --credentials USER:PASSWORD [...] [--fail-sleep S]
"""

from __future__ import annotations

import argparse
import os
import signal
import socketserver
import sys
import time

LINE_LIMIT = 512


class Handler(socketserver.StreamRequestHandler):
    """One connection: two lines in, one digit out."""

    server: SeedStyleServer

    def handle(self) -> None:
        user = self.rfile.readline(LINE_LIMIT).strip().lower()
        password = self.rfile.readline(LINE_LIMIT).strip()
        granted = bool(user) and self.server.table.get(user) == password
        if not granted and self.server.fail_sleep:
            time.sleep(self.server.fail_sleep)
        self.wfile.write(b"0" if granted else b"1")


class SeedStyleServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """Thread per connection, as the example does."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, path: str, table: dict[bytes, bytes], fail_sleep: float) -> None:
        self.table = table
        self.fail_sleep = fail_sleep
        super().__init__(path, Handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("socket")
    parser.add_argument("--credentials", action="append", default=[], metavar="USER:PASSWORD")
    parser.add_argument("--fail-sleep", type=float, default=0.0, metavar="S",
                        help="sleep before a failure reply (the example sleeps 45)")
    args = parser.parse_args(argv)
    table = {}
    for item in args.credentials:
        user, _, password = item.partition(":")
        table[user.lower().encode()] = password.encode()
    if os.path.exists(args.socket):
        os.unlink(args.socket)
    server = SeedStyleServer(args.socket, table, args.fail_sleep)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.serve_forever()
    finally:
        server.server_close()
        if os.path.exists(args.socket):
            os.unlink(args.socket)
    return 0


if __name__ == "__main__":
    sys.exit(main())
