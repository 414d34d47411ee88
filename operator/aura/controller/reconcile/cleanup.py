"""Deleting everything an Agent owns in the clouds, in reverse dependency order.

Order: tailnet devices, servers, the auth key (revoked, Secret deleted), then (unless
`keep_secrets`, as in a rollback) the SSH Secret and the generated gateway-token Secret.
"Already gone" counts as done. One failing object does not stop the others: every step runs,
the failures are returned, and the caller retries the whole (idempotent) sequence later.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable

from aura.controller import errors, naming

# `tailnet` as a module, not its names: tailnet -> attempt -> cleanup -> tailnet is a cycle,
# and a module reference resolves at call time whichever of them is imported first.
from aura.controller.reconcile import prerequisites, secrets, tailnet
from aura.controller.reconcile.context import AgentContext


async def delete_devices(ctx: AgentContext) -> None:
    for device in await tailnet.find_devices(ctx):
        with contextlib.suppress(errors.NotFound):
            await ctx.op.tailnet.delete_device(device.id)
        ctx.op.devices.forget(device.id)
        ctx.event("Normal", "DeviceDeleted", f"removed tailnet device {device.id}")
    ctx.status.tailscale = None


async def delete_servers(ctx: AgentContext) -> None:
    """Delete the recorded server and any server labelled with this Agent's UID."""
    ids = {s.id for s in await ctx.op.servers.find_by_label(naming.AGENT_UID, ctx.ref.uid, 0)}
    if ctx.status.server is not None and ctx.status.server.id is not None:
        ids.add(ctx.status.server.id)
    for server_id in sorted(ids):
        try:
            await ctx.op.hetzner.delete_server(server_id)
            ctx.event("Normal", "ServerDeleted", f"deleted server {server_id}")
        except errors.NotFound:
            pass
        ctx.op.servers.forget(server_id)
    ctx.status.server = None


async def delete_cloud_objects(ctx: AgentContext, *, keep_secrets: bool) -> list[str]:
    """Run every cleanup step; returns one line per step that failed (empty: all done)."""
    steps: list[tuple[str, Callable[[AgentContext], Awaitable[None]]]] = [
        ("tailnet device", delete_devices),
        ("server", delete_servers),
        ("auth key", secrets.delete_tailnet_key),
    ]
    if not keep_secrets:
        steps.append(("ssh secret", secrets.delete_ssh_material))
        steps.append(("gateway token secret", prerequisites.delete_generated_token))
    failures: list[str] = []
    for what, step in steps:
        try:
            await step(ctx)
        except errors.AuraError as exc:
            failures.append(f"{what}: {exc}")
            ctx.log.warning("cleanup of %s failed, continuing: %s", what, exc)
    return failures
