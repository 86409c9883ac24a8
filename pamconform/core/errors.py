"""Errors the CLI turns into exit codes: 2 for bad usage or input, 3 for a broken harness."""


class UsageError(Exception):
    """Bad usage or input (exit 2): one line for the user, no traceback."""


class HarnessError(Exception):
    """The harness itself could not run (exit 3)."""
