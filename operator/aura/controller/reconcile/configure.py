"""Configuring: wait for cloud-init to finish, then run the `Configurator` once per server.

The configurator (Ansible in production, the simulated one in sandbox mode) is idempotent, so
a pass killed mid-run simply runs it again. A failed run is a failure of this step and counts
against the retry budget; its message (never containing secrets) lands in the condition.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json

from aura.configure.base import ConfigTarget, ConfigurationError
from aura.controller import conditions, errors
from aura.controller.conditions import FALSE, TRUE, Reason
from aura.controller.pool import handover
from aura.controller.reconcile import attempt, prerequisites, secrets
from aura.controller.reconcile.context import DONE, AgentContext, StepResult, Wait


def revision(ctx: AgentContext) -> str:
    """Fingerprint of what a configuration run applies: the server and `spec.runtime`."""
    assert ctx.status.server is not None
    runtime = ctx.spec.runtime.model_dump(mode="json", by_alias=True)
    text = json.dumps({"server": ctx.status.server.id, "runtime": runtime}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


async def ensure_configured(ctx: AgentContext) -> StepResult:
    """The server ran the configurator for the current `revision` (cloud-init finished first)."""
    assert ctx.status.server is not None
    assert ctx.status.server.id is not None
    wanted = revision(ctx)
    if conditions.is_true(ctx.status.conditions, conditions.CONFIGURED):
        if ctx.status.configured_revision in (None, wanted):
            ctx.status.configured_revision = wanted
            return DONE
        ctx.event("Normal", "Reconfiguring", "spec.runtime changed: configuring again")
    if (pushed := await handover.push_config(ctx, wanted, config_target)) is not None:
        return pushed  # hook: warm pool (a handed-over server's first configuration)
    server_id = ctx.status.server.id
    host, _ = _target_address(ctx)
    if not await ctx.op.hosts.cloud_init_done(server_id, host):
        ctx.set(
            conditions.CONFIGURED,
            FALSE,
            Reason.WAITING_FOR_CLOUD_INIT,
            f"waiting for cloud-init on server {server_id}",
        )
        attempt.give_up_after(
            ctx,
            ctx.config.cloud_init_timeout,
            f"cloud-init did not finish within {ctx.config.cloud_init_timeout:.0f}s",
            reason=Reason.CLOUD_INIT_TIMEOUT,
        )
        return Wait(ctx.config.poll_interval, "cloud-init running")
    ctx.set(conditions.CONFIGURED, FALSE, Reason.CONFIGURING, f"configuring server {server_id}")
    target = await config_target(ctx, await secrets.ensure_ssh_material(ctx))
    try:
        result = await asyncio.wait_for(
            ctx.op.configurator.configure(target), ctx.config.configure_timeout
        )
    except TimeoutError:
        message = f"configuration timed out after {ctx.config.configure_timeout:.0f}s"
        ctx.set(conditions.CONFIGURED, FALSE, Reason.CONFIGURATION_FAILED, message)
        raise errors.Retryable(message) from None
    except ConfigurationError as exc:
        # The contract (configure/base.py) keeps this message free of secrets; any other
        # exception is a configurator bug and is not dressed up as a transient failure.
        message = f"configurator error: {exc}"[:1000]
        ctx.set(conditions.CONFIGURED, FALSE, Reason.CONFIGURATION_FAILED, message)
        raise errors.Retryable(message) from None
    if not result.ok:
        where = f" at task {result.failed_task!r}" if result.failed_task else ""
        message = f"configuration failed{where}: {result.message}"[:1000]
        ctx.set(conditions.CONFIGURED, FALSE, Reason.CONFIGURATION_FAILED, message)
        raise errors.Retryable(message)
    message = f"configured in {result.duration_seconds:.1f}s ({result.changed} changed)"
    ctx.set(conditions.CONFIGURED, TRUE, Reason.CONFIGURED_OK, message)
    ctx.status.configured_revision = wanted
    ctx.event("Normal", "Configured", f"server {server_id} {message}")
    return DONE


async def config_target(ctx: AgentContext, ssh: secrets.SshMaterial) -> ConfigTarget:
    """How the configurator reaches and configures this Agent's server (also used to stop and
    start the gateway around a checkpoint)."""
    assert ctx.status.server is not None
    assert ctx.status.server.id is not None
    return dataclasses.replace(
        connection_target(ctx, ssh, ctx.status.server.id),
        runtime_env=await prerequisites.runtime_env(ctx),
        settings=dict(ctx.spec.runtime.settings),
    )


def connection_target(ctx: AgentContext, ssh: secrets.SshMaterial, server_id: int) -> ConfigTarget:
    """How the configurator reaches server `server_id`, without the Agent's runtime
    configuration (enough for a play that only drives the gateway service)."""
    host, port = _target_address(ctx)
    return ConfigTarget(
        agent=f"{ctx.ref.namespace}/{ctx.ref.name}",
        server_id=server_id,
        host=host or "",
        port=port,
        user=ctx.config.ssh_user,
        ssh_private_key=ssh.client_private_key,
        ssh_host_public_key=ssh.host_public_key,
        openclaw_version=ctx.spec.runtime.openclaw_version,
        gateway_port=ctx.spec.runtime.gateway_port,
        extra_vars=dict(ctx.config.ansible_extra_vars),
    )


def _target_address(ctx: AgentContext) -> tuple[str | None, int]:
    override = ctx.config.ssh_target_override
    if override:
        host, _, port = override.rpartition(":")
        return host, int(port)
    joined = conditions.is_true(ctx.status.conditions, conditions.TAILNET_JOINED)
    if joined and ctx.status.tailscale is not None and ctx.status.tailscale.ipv4:
        # The first run closes public SSH (the firewall admits only Tailscale), so every later
        # run reaches the host over the tailnet.
        return ctx.status.tailscale.ipv4, 22
    assert ctx.status.server is not None
    return ctx.status.server.ipv4 or ctx.status.server.ipv6, 22
