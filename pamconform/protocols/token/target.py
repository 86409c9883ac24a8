"""A token server under test: reached through the sockets its tokens name."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pamconform.protocols.token.minting import TokenSource

#: Longest server expiry the expiry case will wait out by default.
MAX_EXPIRY_WAIT = 10.0


@dataclass
class TokenServerTarget:
    """A transient-token server: a token source, and how long to wait for it."""

    name: str
    source: TokenSource
    #: how long to wait for each reply
    timeout: float = 5.0
    #: how long a case waits for the server to drop a silent or slow client (T-S2)
    idle_limit: float = 10.0
    #: the server's token lifetime in seconds, if known (``--expiry``); the expiry case
    #: SKIPs when it is unknown or longer than MAX_EXPIRY_WAIT
    expiry: float | None = None
    protocol: str = "transient-token"

    @property
    def socket(self) -> Path | None:
        """The fixed socket override, or None when each token names its own socket."""
        return self.source.socket

    def close(self) -> None:
        """Spend leftover tokens and stop what the token command left running."""
        self.source.close()
