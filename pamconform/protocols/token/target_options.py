"""Turn command-line input into a TokenServerTarget, with one-line usage errors."""

from __future__ import annotations

from pathlib import Path

from pamconform.core.errors import UsageError
from pamconform.protocols.token.minting import SOCKET_DIR, MintFailed, Token, TokenSource
from pamconform.protocols.token.target import TokenServerTarget


def make_target(
    socket: Path | None,
    token_command: str | None,
    token: str | None,
    timeout: float,
    name: str | None,
    *,
    socket_dir: Path | None = None,
    idle_limit: float = 10.0,
    expiry: float | None = None,
    command_timeout: float = 10.0,
    ready_timeout: float = 2.0,
) -> TokenServerTarget:
    """A token-server target; raises UsageError with one clear line for bad input.

    ``socket`` is a fixed socket (the server runs with ``--socket PATH``) or, if it is a
    directory, where the derived ``transient-token-<uid>-<pid>`` sockets live (the
    server's ``--socket-dir``); by default they are derived under /tmp.  With
    ``token_command`` the command is run once here, so that a broken command is a
    usage error; the token it printed is handed to the first case.
    """
    if (token_command is None) == (token is None):
        raise UsageError("give exactly one of --token-command CMD (a fresh token per "
                         "attempt) and --token TOKEN (one attempt only)")
    if token_command is not None and not token_command.strip():
        raise UsageError("--token-command: empty command")
    if not timeout > 0 or not idle_limit > 0:
        raise UsageError("--timeout and --idle-limit must be positive")
    if expiry is not None and not expiry > 0:
        raise UsageError("--expiry must be positive")
    directory = socket_dir or SOCKET_DIR
    typed = socket  # the target is named by what was typed, as the run's plan names it
    if socket is not None and socket.is_dir():
        directory, socket = socket, None
    if token is not None:
        token = token.strip()
        try:
            Token.parse(token)
        except ValueError as exc:
            raise UsageError(f"--token: {exc}") from None
    source = TokenSource(token_command, token, socket=socket, socket_dir=directory,
                         command_timeout=command_timeout, ready_timeout=ready_timeout)
    if token_command is not None:
        try:
            minted = source.preflight()
        except MintFailed as exc:
            source.close()
            raise UsageError(f"--token-command: {exc}") from None
        except BaseException:  # Ctrl-C while the command runs: nothing left behind
            source.close()
            raise
        if not minted.ready:
            source.close()
            raise UsageError(f"--token-command: it printed a token but no socket appeared at "
                             f"{minted.socket} (give the socket, or its directory, with the "
                             "SOCKET argument)")
    default_name = token_command if token_command is not None else "token"
    return TokenServerTarget(name or str(typed or default_name), source, timeout=timeout,
                             idle_limit=idle_limit, expiry=expiry)
