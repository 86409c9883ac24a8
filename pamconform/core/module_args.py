"""A module's arguments as a run writes them into PAM stacks: ``{socket}``, and secrets.

``{secret:NAME}`` stands for the value of the environment variable ``NAME``: an API key
or a shared secret a module takes as an argument. The value never reaches a report, a
log or the console (it is registered for redaction, as a password is); the reports show
the arguments as given, with the placeholder.
"""

from __future__ import annotations

import os
import re

from pamconform.core.errors import UsageError
from pamconform.core.redaction import GRAM, register_value

#: ``{secret:NAME}``: the value of environment variable NAME.
SECRET = re.compile(r"\{secret:([A-Za-z_][A-Za-z0-9_]*)\}")


def secrets(template: str) -> dict[str, str]:
    """Each ``{secret:NAME}`` of ``template`` with its value, registered for redaction;
    a UsageError (one line) for a variable that is unset, too short to be kept out of
    reports, or holds what a PAM argument cannot (white space)."""
    found: dict[str, str] = {}
    for name in SECRET.findall(template):
        value = os.environ.get(name)
        if value is None:
            raise UsageError(f"--args: {{secret:{name}}}: the environment variable {name} "
                             "is not set")
        if len(value.encode()) < GRAM:
            raise UsageError(f"--args: {{secret:{name}}}: shorter than {GRAM} bytes, it "
                             "could not be told from ordinary text in a report")
        if any(ch.isspace() for ch in value):
            raise UsageError(f"--args: {{secret:{name}}}: a module argument cannot hold "
                             "white space")
        register_value(value.encode(), f"module argument {name}")
        found[name] = value
    return found


def expand(template: str, socket: str) -> str:
    """``template`` with ``{socket}`` and every ``{secret:NAME}`` substituted."""
    values = secrets(template)
    return SECRET.sub(lambda m: values[m.group(1)], template.replace("{socket}", socket))
