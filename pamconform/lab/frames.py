"""Docker's multiplexed exec stream (no pty): 8-byte headers, stream 1 stdout, 2 stderr."""

from __future__ import annotations

import struct
from collections.abc import Iterator

STDERR = 2


def take_frames(buf: bytearray) -> Iterator[tuple[int, bytes]]:
    """Each whole frame at the start of ``buf`` as (stream, payload), removed from it;
    a partial frame stays for the next read."""
    while len(buf) >= 8:
        kind, size = buf[0], struct.unpack(">I", bytes(buf[4:8]))[0]
        if len(buf) < 8 + size:
            return
        payload = bytes(buf[8:8 + size])
        del buf[:8 + size]
        yield kind, payload
