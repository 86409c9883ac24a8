"""Loads the pamconform pytest plugin when running from a checkout."""

pytest_plugins = ["pamconform.plugin"]
