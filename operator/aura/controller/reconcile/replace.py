"""Replacing a server that was deleted behind our back (in the Hetzner console, by hand).

Everything that depended on it goes too: its tailnet device is stale (it would shadow the
replacement's hostname) and its auth key was spent. A new provisioning attempt starts, and the
next `ensure_server` creates the replacement with a fresh key, from the Agent's newest ready
checkpoint (`status.serverSource`): the Event names it and its age, the window of changes
lost. Without one the replacement starts blank, and the Event says the data was lost.
"""

from __future__ import annotations

from aura.controller import conditions
from aura.controller.checkpoints import lookup
from aura.controller.conditions import FALSE, UNKNOWN, Reason
from aura.controller.reconcile import attempt, cleanup, secrets
from aura.controller.reconcile.context import AgentContext
from aura.controller.reconcile.source import REPLACEMENT
from aura.hibernation_models import ServerSource


async def restore_source(ctx: AgentContext) -> str:
    """Point `status.serverSource` at the newest ready checkpoint (or clear it); returns the
    sentence for the Event: which checkpoint and how old, or that the data is lost."""
    newest = await lookup.newest_ready(ctx)
    if newest is None:
        ctx.status.server_source = None
        return "the replacement starts blank (no ready checkpoint): the Agent's data is lost"
    ctx.status.server_source = ServerSource(
        checkpoint=newest.name,
        image_id=newest.image_id,
        taken_at=newest.taken_at,
        purpose=REPLACEMENT,
    )
    age = lookup.age_phrase(ctx, newest.taken_at)
    return (
        f"the replacement is created from checkpoint {newest.name} (image {newest.image_id}), "
        f"taken {age}: changes since then are lost"
    )


async def replace_vanished_server(ctx: AgentContext, message: str) -> None:
    """Forget the vanished server, delete its device and auth key, start a new attempt."""
    ctx.event("Warning", "ServerMissing", f"{message}; {await restore_source(ctx)}")
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
