"""Loads the pytest plugin when pamconform is not installed (its ``pytest11`` entry point
registers it under the same name, ``pamconform.plugin``, so pytest skips this then)."""

pytest_plugins = ["pamconform.plugin"]
