"""The Hetzner server of an Agent: find (ID first, labels second), create or adopt.

Powering it on and timing its boot is `boot.py`; replacing one deleted behind our back is
`replace.py`; stopping it is `power.py`.

Crash windows this module closes:
- killed after `POST /servers` was sent but before the ID reached status: the next pass finds
  the server by its `aura.dev/agent-uid` label (with a list fetched *after* the attempt) and
  adopts it;
- a create that is retried after a lost response hits `uniqueness_error`: the server with our
  deterministic name is adopted.
Reads come from the shared `ServerCache` (one list call serves every agent; a booting server
is polled through the list of servers in transition), see `find_server`.
"""

from __future__ import annotations

import contextlib
import math
import time

from aura.controller import conditions, errors, naming
from aura.controller.checkpoints import clone
from aura.controller.clients.hetzner_api import ServerInfo
from aura.controller.conditions import FALSE, Reason
from aura.controller.fleet_images import choose
from aura.controller.fleet_images import labels as image_labels
from aura.controller.pool import bind
from aura.controller.reconcile import budget, cloudinit, pacing, replace, secrets, source
from aura.controller.reconcile.context import DONE, AgentContext, StepResult, Wait
from aura.models import ServerStatus


async def find_server(
    ctx: AgentContext, *, want: str = "running", fresh_after: float | None = None
) -> ServerInfo | None:
    """Our server for this Agent, or None when no server matches.

    Looks up the stored ID first, then the UID label. Extra servers with our UID (a
    duplicate from some earlier bug or race) are reported and deleted, keeping the oldest.

    What it costs (the Hetzner budget, `clients/servercache.py`): a server last seen in the
    state the Agent `want`s is settled and read from the shared list at any age (the drift
    sweep refreshes it; a failing probe asks directly, `health.py`); one in transition is
    polled every `--server-list-max-age`. The label lookup, for an Agent without a stored ID,
    needs a list fetched after `fresh_after` (its last create attempt, or the process start).
    """
    cache = ctx.op.servers
    recorded = ctx.status.server
    if recorded is not None and recorded.id is not None:
        if recorded.status == want:
            found = await cache.get(recorded.id, math.inf)
        else:
            found = await cache.poll(recorded.id, ctx.config.server_list_max_age)
        if found is not None:
            return found
    max_age = math.inf if fresh_after is None else max(0.0, time.monotonic() - fresh_after)
    matches = sorted(await cache.find_by_label(naming.AGENT_UID, ctx.ref.uid, max_age), key=_id)
    for extra in matches[1:]:
        ctx.event("Warning", "DuplicateServer", f"deleting duplicate server {extra.id}")
        with contextlib.suppress(errors.NotFound):
            await ctx.op.hetzner.delete_server(extra.id)
        cache.forget(extra.id)
    return matches[0] if matches else None


def _id(server: ServerInfo) -> int:
    return server.id


async def server_gone(ctx: AgentContext, server_id: int) -> bool:
    """Confirm with a direct GET that a server missing from the list is really gone."""
    try:
        server = await ctx.op.hetzner.get_server(server_id)
    except errors.NotFound:
        return True
    ctx.op.servers.remember(server)
    return False


def record_server(ctx: AgentContext, server: ServerInfo) -> None:
    """Copy what was observed of `server` into `status.server`."""
    ctx.status.server = ServerStatus(
        id=server.id,
        name=server.name,
        status=server.status,
        type=server.server_type,
        location=server.location,
        ipv4=server.ipv4,
        ipv6=server.ipv6,
    )


async def ensure_server(ctx: AgentContext) -> StepResult:
    """The Agent has a server: found, adopted, or created now."""
    memory = ctx.op.memory
    fresh_after = memory.create_attempts.get(ctx.ref.uid, memory.started)
    server = await find_server(ctx, fresh_after=fresh_after)
    if server is None and ctx.status.server and ctx.status.server.id is not None:
        if not await server_gone(ctx, ctx.status.server.id):
            return Wait(ctx.config.poll_interval, "server list lagging behind")
        await replace.replace_vanished_server(
            ctx, f"server {ctx.status.server.id} was deleted outside Aura"
        )
    if server is None and source.source_image(ctx) is None:  # a checkpoint's data: not a pool's
        server = await bind.take(ctx)  # hook: warm pool (no create, so no slot)
    if server is None:
        if (queued := pacing.take_slot(ctx)) is not None:
            return queued
        try:
            server = await _create(ctx)
        except errors.InvalidRequest as exc:
            if exc.reason != "ResourceLimitExceeded":
                raise
            return budget.project_limit(ctx)
    else:
        await bind.finish(ctx, server)  # hook: warm pool
    record_server(ctx, server)
    return DONE


async def _create(ctx: AgentContext) -> ServerInfo:
    image: str | int = (
        await clone.source_image(ctx)  # hook: clones
        or source.source_image(ctx)  # a wake or a replacement: the checkpoint's image
        or ctx.spec.server.image
    )
    golden = None
    if ctx.spec.source is None and source.source_image(ctx) is None:
        golden = await choose.golden_image(ctx)  # hook: golden images
    if golden is not None:
        image = golden.image_id
    ssh = await secrets.ensure_ssh_material(ctx)
    key = await secrets.ensure_tailnet_key(ctx)
    user_data = cloudinit.render(
        cloudinit.CloudInit(
            hostname=ctx.hostname,
            auth_key=key.key,
            ssh_user=ctx.config.ssh_user,
            authorized_key=ssh.client_public_key,
            host_private_key=ssh.host_private_key,
            host_public_key=ssh.host_public_key,
            # A clone's, a golden or a replacement's image carries another host's tailnet state.
            fresh_identity=ctx.spec.source is not None
            or golden is not None
            or source.fresh_identity(ctx),
        )
    )
    spec = ctx.spec.server
    ctx.op.memory.create_attempts[ctx.ref.uid] = time.monotonic()
    try:
        server = await ctx.op.hetzner.create_server(
            name=ctx.server_name,
            server_type=spec.type,
            location=spec.location,
            image=image,
            labels={**naming.server_labels(ctx.ref), **image_labels.server_labels(golden)},
            user_data=user_data,
        )
    except errors.AlreadyExists:
        server = await _adopt_by_name(ctx)
    else:
        origin = f" from golden image {golden.image_id}" if golden is not None else ""
        ctx.event("Normal", "ServerCreated", f"created server {server.id} ({server.name}){origin}")
    ctx.op.servers.remember(server)
    if source.waking(ctx):
        message = f"server {server.id} is being created from the hibernation checkpoint"
        ctx.set(conditions.SERVER_READY, FALSE, Reason.WAKING, message)
    else:
        message = f"server {server.id} is being created"
        ctx.set(conditions.SERVER_READY, FALSE, Reason.CREATING, message)
    return server


async def _adopt_by_name(ctx: AgentContext) -> ServerInfo:
    """Our earlier create went through (its response was lost): take that server over."""
    for server in await ctx.op.servers.all(max_age=0):
        if server.name == ctx.server_name and server.labels.get(naming.AGENT_UID) == ctx.ref.uid:
            ctx.event("Normal", "AdoptedExistingServer", f"adopted server {server.id}")
            return server
    # The name is taken by a server that is not ours (or not listed yet): not ours to adopt.
    raise errors.Retryable(f"server name {ctx.server_name} is taken by a server Aura does not own")
