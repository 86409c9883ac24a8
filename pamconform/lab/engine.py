"""Connecting to the Docker engine. Never installs or starts anything."""

from __future__ import annotations

import os

from pamconform.core.errors import HarnessError
from pamconform.lab.sdk import docker, requests

#: The Docker SDK imports paramiko for any ssh:// engine (then runs the ssh command).
SSH_HINT = ("DOCKER_HOST is an ssh:// engine and the Docker SDK needs paramiko for it: "
            "pip install 'docker[ssh]', or forward the engine's socket (ssh -nNT -L "
            "/tmp/docker.sock:/var/run/docker.sock HOST) and set DOCKER_HOST=unix:///tmp/docker.sock")
HINT = "no Docker engine answers; run containers/ensure-engine.sh (root) or start Docker yourself"


class EngineUnavailable(HarnessError, RuntimeError):
    """No Docker engine answered. Run ``containers/ensure-engine.sh`` to get one."""

    def __init__(self, detail: str = "") -> None:
        hint = _hint()
        super().__init__(f"{hint} ({detail})" if detail else hint)
        self.detail = detail


def _hint() -> str:
    """:data:`HINT`, or for a remote engine (``ssh://``, ``tcp://``) what to check there."""
    host = os.environ.get("DOCKER_HOST", "")
    if host.startswith(("ssh://", "tcp://")):
        return (f"no Docker engine answers at {host}: check that engine and the ssh or TLS "
                "settings that reach it (docs/ci.md)")
    return HINT


def connect(timeout: float = 10) -> docker.DockerClient:
    """A client for the engine named by the environment (DOCKER_HOST, default socket).

    Any engine the Docker SDK reaches: a local or remote ``unix://`` socket, ``tcp://``
    (with ``DOCKER_TLS_VERIFY``/``DOCKER_CERT_PATH``), or ``ssh://user@host``, reached
    through the ``ssh`` command as the ``docker`` CLI does (the login drivers' ``docker
    exec`` follows the same variable). ``timeout`` bounds the connection and the ping;
    later API calls use the same timeout unless they pass their own. Raises
    EngineUnavailable when no engine answers.
    """
    try:
        client = docker.from_env(timeout=timeout, max_pool_size=32,
                                 use_ssh_client=over_ssh())
    except docker.errors.DockerException as exc:
        if over_ssh() and "paramiko" in str(exc):
            raise EngineUnavailable(SSH_HINT) from exc
        raise EngineUnavailable(_short(exc)) from exc
    try:
        client.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
        client.close()
        raise EngineUnavailable(_short(exc)) from exc
    return client


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def over_ssh() -> bool:
    """Whether ``DOCKER_HOST`` names an ``ssh://`` engine (the SDK then runs ``ssh``)."""
    return os.environ.get("DOCKER_HOST", "").startswith("ssh://")
