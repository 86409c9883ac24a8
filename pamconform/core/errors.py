"""Errors the CLI turns into exit codes: 2 for bad usage or input, 3 for a broken harness."""


class UsageError(Exception):
    """Bad usage or input (exit 2): one line for the user, no traceback."""


class HarnessError(Exception):
    """The harness itself could not run (exit 3)."""


class TargetUnreachable(Exception):
    """A case could not reach its target at all (no socket, connection refused).

    Protocol clients raise a subclass; the runner grades it FAIL whatever the protocol.
    """
