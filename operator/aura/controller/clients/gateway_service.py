"""The gateway service on an Agent's server: started, stopped or restarted, one Protocol.

Three features drive it: a `consistent` checkpoint stops `openclaw-gateway` (its memory,
workspace and sessions flushed, nothing written during the snapshot) and starts it again, the
repair ladder's first rung restarts it, and a warm pool's handover (`pool/handover.py`)
pushes the customer's configuration to an installed server and restarts it. The service is
reached the way the configurator reaches the host: in production the playbook
`ansible/gateway-service.yml` over the same SSH connection, key and pinned host key (through
the tailnet proxy when there is one); in sandbox mode the simulator's admin API
(`clients/sandbox_world.SandboxGatewayService`).
"""

from __future__ import annotations

import asyncio
from enum import StrEnum
from typing import Protocol

from aura.configure.base import ConfigResult, ConfigTarget, ConfigurationError, Configurator
from aura.controller import errors

SERVICE_PLAYBOOK = "gateway-service.yml"
STATE_VAR = "aura_gateway_state"
HANDOVER_VAR = "aura_gateway_config"


class GatewayState(StrEnum):
    """What to make of the service; the values are systemd's unit states, as the playbook
    passes them to `ansible.builtin.systemd_service`."""

    STARTED = "started"
    STOPPED = "stopped"
    RESTARTED = "restarted"


class GatewayService(Protocol):
    async def set_state(self, target: ConfigTarget, state: GatewayState) -> ConfigResult:
        """Start, stop or restart the gateway on `target`; starting and stopping are
        idempotent. `ok=False` (with a secret-free message) when the host refuses; raises
        `ConfigurationError` when it cannot be reached."""
        ...

    async def push_config(self, target: ConfigTarget) -> ConfigResult:
        """Write `target`'s runtime configuration (settings, and `runtime_env` with the
        gateway token) on a host that is installed and configured for
        `target.openclaw_version`, restart the gateway when it changed, and return once it
        answers. Idempotent. `ok=False` when the host refuses (not configured, another
        version: the full configuration run is needed); raises `ConfigurationError` when it
        cannot be reached."""
        ...


class PlaybookGatewayService:
    """Runs `gateway-service.yml` through a configurator bound to that playbook."""

    def __init__(self, configurator: Configurator) -> None:
        self._configurator = configurator

    async def set_state(self, target: ConfigTarget, state: GatewayState) -> ConfigResult:
        extra = {**target.extra_vars, STATE_VAR: state.value}
        return await self._configurator.configure(
            ConfigTarget(**{**vars(target), "extra_vars": extra})
        )

    async def push_config(self, target: ConfigTarget) -> ConfigResult:
        # The runtime role's handover.yml, then `started`: its handler restarts on a change.
        extra = {**target.extra_vars, STATE_VAR: GatewayState.STARTED.value, HANDOVER_VAR: True}
        return await self._configurator.configure(
            ConfigTarget(**{**vars(target), "extra_vars": extra})
        )


async def set_gateway(
    service: GatewayService | None, target: ConfigTarget, state: GatewayState, limit: float
) -> str:
    """`set_state` within `limit` seconds; returns what happened. Every failure (no adapter,
    a timeout, an unreachable or refusing host) raises `errors.Retryable` with a secret-free
    message: the checkpoint retries until its deadline, the repair ladder climbs a rung."""
    verb = {GatewayState.STARTED: "start", GatewayState.STOPPED: "stop"}.get(state, "restart")
    if service is None:
        raise errors.Retryable(f"could not {verb} the gateway: no gateway service in this mode")
    try:
        result = await asyncio.wait_for(service.set_state(target, state), limit)
    except TimeoutError:
        raise errors.Retryable(f"could not {verb} the gateway within {limit:.0f}s") from None
    except errors.AuraError:
        raise
    except ConfigurationError as exc:  # its message is written secret-free by the adapter
        raise errors.Retryable(f"could not {verb} the gateway: {exc}"[:500]) from None
    except Exception as exc:  # an arbitrary exception's text might carry a secret
        raise errors.Retryable(f"could not {verb} the gateway: {type(exc).__name__}") from None
    if not result.ok:
        raise errors.Retryable(f"could not {verb} the gateway: {result.message}"[:500])
    return f"gateway service {state.value} in {result.duration_seconds:.1f}s"
