"""Replacing a server that was deleted behind our back (in the Hetzner console, by hand).

Everything that depended on it goes too: its tailnet device is stale (it would shadow the
replacement's hostname) and its auth key was spent. A new provisioning attempt starts, and the
next `ensure_server` creates the replacement with a fresh key.
"""

from __future__ import annotations

from aura.controller import conditions
from aura.controller.conditions import FALSE, UNKNOWN, Reason
from aura.controller.reconcile import attempt, cleanup, secrets
from aura.controller.reconcile.context import AgentContext


async def replace_vanished_server(ctx: AgentContext, message: str) -> None:
    """Forget the vanished server, delete its device and auth key, start a new attempt."""
    ctx.event("Warning", "ServerMissing", message)
    await start_replacement(ctx, Reason.SERVER_MISSING, message)


async def start_replacement(ctx: AgentContext, reason: str, message: str) -> None:
    """With the server gone (or being deleted): delete its device and spent auth key, forget
    it in status and start a new attempt, which creates the replacement. ServerReady says
    `reason` and `message`; the conditions that depended on the server go back to Pending."""
    await cleanup.delete_devices(ctx)
    await secrets.delete_tailnet_key(ctx)
    attempt.restart(ctx)
    ctx.status.server = None
    ctx.status.tailscale = None
    for type_ in (conditions.CONFIGURED, conditions.TAILNET_JOINED, conditions.HEALTHY):
        ctx.set(type_, UNKNOWN, Reason.PENDING, "server is being replaced")
    ctx.set(conditions.SERVER_READY, FALSE, reason, message)
