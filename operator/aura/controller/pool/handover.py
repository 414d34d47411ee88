"""The first configuration of a server taken from a pool: a push, not a playbook run.

A pool member ran the whole playbook when it was built (packages, unit, tailnet, firewall)
with the pool's gateway token. The customer's Agent shares everything that playbook installs:
`bind.fits` matches the runtime version and the gateway port, the only inputs that the
install and the firewall depend on. What differs is the customer's configuration: the
settings (openclaw.json) and the runtime Secret with the gateway token (.env). So the
configure step's hook pushes exactly those and restarts the gateway (`GatewayService.
push_config`: the runtime role's `handover.yml` in production), which answers once the
gateway is back, so the health probe that follows can pass at once. Meanwhile the device gets
the Agent's tags and name (`bind.retag`): the tailnet calls wait in the operator's Tailscale
pacer, shared with the pool's refill, and the host needs seconds anyway.

Safe to repeat after a kill: the push is idempotent, and Configured is written only after it
answered. A host that refuses the push (say, another version is installed) gets the ordinary
configuration run instead, in the same pass. Only the first configuration is a push: a later
change of `spec.runtime` runs the playbook like on any server.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable

from aura.configure.base import ConfigResult, ConfigTarget, ConfigurationError
from aura.controller import conditions, errors
from aura.controller.clients.gateway_service import GatewayService
from aura.controller.conditions import FALSE, TRUE, Reason
from aura.controller.pool import bind
from aura.controller.pool.labels import POOL_SERVED
from aura.controller.reconcile import secrets
from aura.controller.reconcile.context import DONE, AgentContext, StepResult

TargetOf = Callable[[AgentContext, secrets.SshMaterial], Awaitable[ConfigTarget]]


async def push_config(ctx: AgentContext, revision: str, target_of: TargetOf) -> StepResult | None:
    """Configure a server handed over by a pool with a push; None when this is not such a
    server's first configuration, or the host refused (the caller runs the playbook)."""
    service = ctx.op.gateway_service
    if service is None or ctx.status.configured_revision is not None:
        return None
    assert ctx.status.server is not None
    assert ctx.status.server.id is not None
    server_id = ctx.status.server.id
    server = await ctx.op.servers.get(server_id, math.inf)  # the bind remembered it
    if server is None or POOL_SERVED not in server.labels:
        return None
    message = f"pushing the configuration to warm server {server_id}"
    ctx.set(conditions.CONFIGURED, FALSE, Reason.CONFIGURING, message)
    target = await target_of(ctx, await secrets.ensure_ssh_material(ctx))
    # The device's tags and name change while the host works: neither waits for the other.
    retagging = asyncio.create_task(bind.retag(ctx))
    try:
        result = await _push(ctx, service, target)
    except BaseException:
        retagging.cancel()
        await asyncio.wait([retagging])
        raise
    await retagging  # its failure fails the step like the push's, and both run again
    if not result.ok:
        ctx.log.warning("warm server %s refused the push (%s): running the playbook",
                        server_id, result.message)  # fmt: skip
        return None
    message = f"configuration pushed to the warm server in {result.duration_seconds:.1f}s"
    ctx.set(conditions.CONFIGURED, TRUE, Reason.CONFIGURED_OK, message)
    ctx.status.configured_revision = revision
    ctx.event("Normal", "Configured", f"server {server_id} {message}")
    return DONE


async def _push(ctx: AgentContext, service: GatewayService, target: ConfigTarget) -> ConfigResult:
    limit = ctx.config.configure_timeout
    try:
        return await asyncio.wait_for(service.push_config(target), limit)
    except TimeoutError:
        message = f"configuration push timed out after {limit:.0f}s"
        ctx.set(conditions.CONFIGURED, FALSE, Reason.CONFIGURATION_FAILED, message)
        raise errors.Retryable(message) from None
    except ConfigurationError as exc:  # secret-free by the adapter's contract
        message = f"configuration push failed: {exc}"[:1000]
        ctx.set(conditions.CONFIGURED, FALSE, Reason.CONFIGURATION_FAILED, message)
        raise errors.Retryable(message) from None
