"""The ``pamconform`` command: ``main`` parses and dispatches, one module per subcommand."""

from pamconform.cli.main import main

__all__ = ["main"]
