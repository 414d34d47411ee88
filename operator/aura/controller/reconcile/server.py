"""The Hetzner server of an Agent: find (ID first, labels second), create or adopt.

Powering it on and timing its boot is `boot.py`; replacing one deleted behind our back is
`replace.py`; stopping it is `power.py`.

Crash windows this module closes:
- killed after `POST /servers` was sent but before the ID reached status: the next pass finds
  the server by its `aura.dev/agent-uid` label (with a list fetched *after* the attempt) and
  adopts it;
- a create that is retried after a lost response hits `uniqueness_error`: the server with our
  deterministic name is adopted.
Reads come from the shared `ServerCache` (one list call serves every agent), so polling a
booting server costs no per-agent GET.
"""

from __future__ import annotations

import contextlib
import time

from aura.controller import conditions, errors, naming
from aura.controller.checkpoints import clone
from aura.controller.clients.hetzner import ServerInfo
from aura.controller.conditions import FALSE, UNKNOWN, Reason
from aura.controller.reconcile import attempt, budget, cloudinit, replace, secrets
from aura.controller.reconcile.context import DONE, AgentContext, StepResult, Wait
from aura.models import ServerStatus


async def find_server(ctx: AgentContext, *, fresh_after: float | None = None) -> ServerInfo | None:
    """Our server for this Agent, or None when no server matches.

    Looks up the stored ID first, then the UID label. Extra servers with our UID (a
    duplicate from some earlier bug or race) are reported and deleted, keeping the oldest.
    """
    cache = ctx.op.servers
    # Converging agents need a fresh list; a Ready one only looks for drift, which can wait
    # a health interval (this is what keeps steady-state Hetzner calls per agent low).
    max_age = ctx.config.server_list_max_age
    if conditions.is_true(ctx.status.conditions, conditions.READY):
        max_age = max(max_age, ctx.config.health_interval)
    if fresh_after is not None:
        max_age = min(max_age, max(0.0, time.monotonic() - fresh_after))
    stored = ctx.status.server.id if ctx.status.server else None
    if stored is not None:
        found = await cache.get(stored, max_age)
        if found is not None:
            return found
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
    if server is None:
        if not attempt.take_slot(ctx):
            return _queued(ctx)
        try:
            server = await _create(ctx)
        except errors.InvalidRequest as exc:
            if exc.reason != "ResourceLimitExceeded":
                raise
            return budget.project_limit(ctx)
    record_server(ctx, server)
    return DONE


def _queued(ctx: AgentContext) -> Wait:
    """Wait in the provisioning queue. Only the head (the next `limit` Agents) looks again every
    `--poll-interval`; further back, every `limit` places add one interval (at most a health
    interval): 2,000 queued Agents then cost tens of passes a second, not hundreds."""
    slots = ctx.op.slots
    position = slots.position(ctx.ref.uid)
    message = f"waiting for a provisioning slot (position {position} of {len(slots.queue)})"
    ctx.set(conditions.SERVER_READY, UNKNOWN, Reason.QUEUED, message)
    rounds = -(-position // max(slots.limit, 1))  # ceil: 1 for the head
    delay = min(ctx.config.poll_interval * max(rounds, 1), ctx.config.health_interval)
    return Wait(max(delay, ctx.config.poll_interval), "queued")


async def _create(ctx: AgentContext) -> ServerInfo:
    image: str | int = await clone.source_image(ctx) or ctx.spec.server.image  # hook: clones
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
            fresh_identity=ctx.spec.source is not None,
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
            labels=naming.server_labels(ctx.ref),
            user_data=user_data,
        )
    except errors.AlreadyExists:
        server = await _adopt_by_name(ctx)
    else:
        ctx.event("Normal", "ServerCreated", f"created server {server.id} ({server.name})")
    ctx.op.servers.remember(server)
    ctx.set(conditions.SERVER_READY, FALSE, Reason.CREATING, f"server {server.id} is being created")
    return server


async def _adopt_by_name(ctx: AgentContext) -> ServerInfo:
    """Our earlier create went through (its response was lost): take that server over."""
    for server in await ctx.op.servers.all(max_age=0):
        if server.name == ctx.server_name and server.labels.get(naming.AGENT_UID) == ctx.ref.uid:
            ctx.event("Normal", "AdoptedExistingServer", f"adopted server {server.id}")
            return server
    # The name is taken by a server that is not ours (or not listed yet): not ours to adopt.
    raise errors.Retryable(f"server name {ctx.server_name} is taken by a server Aura does not own")
