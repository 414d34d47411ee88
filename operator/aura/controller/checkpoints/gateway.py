"""Stopping and starting the gateway service around a consistent snapshot.

A `consistent` checkpoint stops `openclaw-gateway` (so its memory, workspace and sessions are
flushed and nothing writes during the snapshot), snapshots, and starts it again. The service is
reached the way the configurator reaches the host: in production the Ansible playbook
`ansible/gateway-service.yml` over the same SSH connection, key and pinned host key; in sandbox
mode the simulator's admin API (`clients/sandbox_world.SandboxGatewayService`).
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from aura.configure.base import ConfigResult, ConfigTarget, Configurator
from aura.controller import errors

SERVICE_PLAYBOOK = "gateway-service.yml"
STATE_VAR = "aura_gateway_state"


class GatewayService(Protocol):
    async def set_running(self, target: ConfigTarget, running: bool) -> ConfigResult:
        """Start or stop the gateway service; idempotent."""
        ...


class PlaybookGatewayService:
    """Runs `gateway-service.yml` through a configurator bound to that playbook."""

    def __init__(self, configurator: Configurator) -> None:
        self._configurator = configurator

    async def set_running(self, target: ConfigTarget, running: bool) -> ConfigResult:
        extra = {**target.extra_vars, STATE_VAR: "started" if running else "stopped"}
        return await self._configurator.configure(
            ConfigTarget(**{**vars(target), "extra_vars": extra})
        )


async def set_gateway(
    service: GatewayService, target: ConfigTarget, running: bool, limit: float
) -> None:
    """`set_running` with a time limit; raises `errors.Retryable` with a secret-free message."""
    verb = "start" if running else "stop"
    try:
        result = await asyncio.wait_for(service.set_running(target, running), limit)
    except TimeoutError:
        raise errors.Retryable(f"could not {verb} the gateway within {limit:.0f}s") from None
    except errors.AuraError:
        raise
    except Exception as exc:  # an arbitrary exception's text might carry a secret
        raise errors.Retryable(f"could not {verb} the gateway: {type(exc).__name__}") from None
    if not result.ok:
        raise errors.Retryable(f"could not {verb} the gateway: {result.message}"[:500])
