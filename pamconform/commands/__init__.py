"""Subcommands added to ``pamconform`` through ``cli.COMMAND_MODULES``.

Each module has ``register(subparsers)``, which adds its parser and sets
``func(args, console) -> int`` as the parser's default.
"""
