"""testinfra on a lab container, its commands run by :meth:`LabContainer.run` (with a timeout).

testinfra's own ``docker://`` backend shells out to ``docker exec`` without a timeout;
this backend gives testinfra's modules (``file``, ``process``, ``run`` ...) the lab's one
way to run a command instead.
"""

from __future__ import annotations

from typing import Any

import testinfra.host
from testinfra.backend.base import BaseBackend, CommandResult

from pamconform.lab.containers import LabContainer

#: Seconds one testinfra command may take in the container.
DEFAULT_TIMEOUT_S = 20.0


class LabBackend(BaseBackend):
    """A testinfra backend over one lab container."""

    NAME = "pamconform-lab"

    def __init__(self, box: LabContainer, *, timeout: float = DEFAULT_TIMEOUT_S,
                 **kwargs: Any) -> None:
        self.box = box
        self.timeout = timeout
        super().__init__(box.name, **kwargs)

    def run(self, command: str, *args: str, **kwargs: Any) -> CommandResult:
        cmd = self.get_command(command, *args)
        res = self.box.run(cmd, timeout=self.timeout)
        return self.result(res.exit_code, self.encode(cmd), res.stdout, res.stderr)


def lab_host(box: LabContainer, *, timeout: float = DEFAULT_TIMEOUT_S) -> testinfra.host.Host:
    """A testinfra ``host`` for ``box`` (``host.file(...)``, ``host.run(...)`` ...)."""
    backend = LabBackend(box, timeout=timeout)
    host = testinfra.host.Host(backend)
    backend.set_host(host)
    return host
