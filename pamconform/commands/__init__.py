"""Subcommands added to ``pamconform`` through ``cli.COMMAND_MODULES``."""
