#!/usr/bin/env python3
"""The null server: grants everyone at once (``0``), for measuring the client side.

One thread, blocking: accept, one read of the request, write ``0``, close. Nothing is
checked, so whatever limits a benchmark against it is the client, the kernel, or this
loop's own few system calls.

    null_server.py SOCKET
"""

from __future__ import annotations

import os
import signal
import socket
import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: null_server.py SOCKET", file=sys.stderr)
        return 2
    path = args[0]
    if os.path.exists(path):
        os.unlink(path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1024)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            conn, _ = listener.accept()
            try:
                conn.recv(4096)
                conn.send(b"0")
            except OSError:
                pass
            conn.close()
    finally:
        listener.close()
        os.unlink(path)


if __name__ == "__main__":
    sys.exit(main())
