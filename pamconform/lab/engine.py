"""Connecting to the Docker engine. Never installs or starts anything."""

from __future__ import annotations

import docker
import docker.errors
import requests.exceptions

from pamconform.core.errors import HarnessError

HINT = "no Docker engine answers; run containers/ensure-engine.sh (root) or start Docker yourself"


class EngineUnavailable(HarnessError, RuntimeError):
    """No Docker engine answered. Run ``containers/ensure-engine.sh`` to get one."""

    def __init__(self, detail: str = "") -> None:
        super().__init__(f"{HINT} ({detail})" if detail else HINT)
        self.detail = detail


def connect(timeout: float = 10) -> docker.DockerClient:
    """A client for the engine named by the environment (DOCKER_HOST, default socket).

    ``timeout`` bounds the connection and the ping; later API calls use the same timeout
    unless they pass their own. Raises EngineUnavailable when no engine answers.
    """
    try:
        client = docker.from_env(timeout=timeout, max_pool_size=32)
    except docker.errors.DockerException as exc:
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
