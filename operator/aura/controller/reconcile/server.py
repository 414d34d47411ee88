"""The Hetzner server of an Agent: find (ID first, labels second), create or adopt, power.

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
from aura.controller.clients.hetzner import ServerInfo
from aura.controller.conditions import FALSE, TRUE, UNKNOWN, Reason
from aura.controller.reconcile import cleanup, cloudinit, secrets
from aura.controller.reconcile.context import DONE, AgentContext, StepResult, Wait
from aura.cost import gate
from aura.cost.budget import PROJECT_LIMIT_FIX
from aura.models import ProvisioningStatus, ServerStatus


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


def record(ctx: AgentContext, server: ServerInfo) -> None:
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
    uid = ctx.ref.uid
    fresh_after = ctx.op.create_attempts.get(uid, ctx.op.started)
    server = await find_server(ctx, fresh_after=fresh_after)
    if server is None and ctx.status.server and ctx.status.server.id is not None:
        if not await server_gone(ctx, ctx.status.server.id):
            return Wait(ctx.config.poll_interval, "server list lagging behind")
        await drifted(ctx, f"server {ctx.status.server.id} was deleted outside Aura")
    if server is None:
        if not ctx.op.take_provisioning_slot(uid):
            ctx.set(conditions.SERVER_READY, UNKNOWN, Reason.QUEUED, "waiting for a slot")
            return Wait(ctx.config.poll_interval, "queued")
        try:
            server = await _create(ctx)
        except errors.InvalidRequest as exc:
            if exc.reason != "ResourceLimitExceeded":
                raise
            return _project_limit(ctx)
    record(ctx, server)
    return DONE


async def ensure_budget_allows(ctx: AgentContext) -> StepResult | None:
    """Prerequisite of a create: no AgentBudget of the namespace holds new servers back.

    Only an Agent without a server is gated (a new one, or one waking without its server);
    while held it stays Queued with no provisioning attempt running, so the attempt's
    deadline starts when the budget lets it go. Returns Wait while held, else None.
    """
    if ctx.status.server is not None and ctx.status.server.id is not None:
        return None
    if await find_server(ctx) is not None:
        return None  # a server exists (e.g. a lost create response): adopt it, nothing new
    why = await gate.budget_hold(ctx.op.budgets, ctx.ref.namespace)
    if why is None:
        return None
    ctx.status.provisioning = None
    ctx.op.release_provisioning_slot(ctx.ref.uid)
    if (
        conditions.reason_of(ctx.status.conditions, conditions.SERVER_READY)
        != Reason.BUDGET_BLOCKED
    ):
        ctx.event("Warning", "BudgetBlocked", why)
    ctx.set(conditions.SERVER_READY, UNKNOWN, Reason.BUDGET_BLOCKED, why)
    ctx.set(conditions.READY, FALSE, Reason.BUDGET_BLOCKED, why)
    return Wait(ctx.config.poll_interval, "held by a budget")


def _project_limit(ctx: AgentContext) -> StepResult:
    """Hetzner's project server limit: wait in Queued with the fix named (not a failure)."""
    ctx.status.provisioning = None  # the attempt restarts, with its deadline, once it can go
    ctx.op.release_provisioning_slot(ctx.ref.uid)
    known = conditions.reason_of(ctx.status.conditions, conditions.SERVER_READY)
    if known != Reason.PROJECT_SERVER_LIMIT:
        ctx.event("Warning", "ProjectServerLimit", PROJECT_LIMIT_FIX)
    ctx.set(conditions.SERVER_READY, UNKNOWN, Reason.PROJECT_SERVER_LIMIT, PROJECT_LIMIT_FIX)
    return Wait(max(ctx.config.poll_interval, 30.0), "project server limit")


async def drifted(ctx: AgentContext, message: str) -> None:
    """The server vanished: forget it and everything that depended on it.

    Its tailnet device is stale (it would shadow the replacement's hostname) and its auth key
    was spent, so both go; the replacement gets a fresh key and a new provisioning attempt.
    """
    ctx.event("Warning", "ServerMissing", message)
    await cleanup.delete_devices(ctx)
    await secrets.delete_tailnet_key(ctx)
    ctx.status.provisioning = ProvisioningStatus(attempt=1, started_at=conditions.now())
    ctx.status.server = None
    ctx.status.tailscale = None
    for type_ in (conditions.CONFIGURED, conditions.TAILNET_JOINED, conditions.HEALTHY):
        ctx.set(type_, UNKNOWN, Reason.PENDING, "server is being replaced")
    ctx.set(conditions.SERVER_READY, FALSE, Reason.SERVER_MISSING, message)


async def _create(ctx: AgentContext) -> ServerInfo:
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
        )
    )
    spec = ctx.spec.server
    ctx.op.create_attempts[ctx.ref.uid] = time.monotonic()
    try:
        server = await ctx.op.hetzner.create_server(
            name=ctx.server_name,
            server_type=spec.type,
            location=spec.location,
            image=spec.image,
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


async def ensure_server_running(ctx: AgentContext) -> StepResult:
    """The server is `running`: power it on if it is off; time the boot while provisioning."""
    assert ctx.status.server is not None
    assert ctx.status.server.id is not None
    server_id, state = ctx.status.server.id, ctx.status.server.status
    if state == "running":
        ctx.set(conditions.SERVER_READY, TRUE, Reason.RUNNING, f"server {server_id} is running")
        return DONE
    was_ready = conditions.is_true(ctx.status.conditions, conditions.SERVER_READY)
    if state == "off":
        if was_ready:
            ctx.event("Warning", "ServerPoweredOffExternally", f"server {server_id} is off")
        await ctx.op.hetzner.power_on(server_id)
        ctx.set(conditions.SERVER_READY, FALSE, Reason.STARTING, f"powering on server {server_id}")
    elif state in ("initializing", "starting"):
        reason = Reason.CREATING if state == "initializing" else Reason.STARTING
        ctx.set(conditions.SERVER_READY, FALSE, reason, f"server {server_id} is {state}")
    else:
        ctx.set(conditions.SERVER_READY, FALSE, Reason.STARTING, f"server {server_id} is {state}")
    ctx.fail_after(
        conditions.SERVER_READY,
        ctx.config.boot_timeout,
        "boot",
        f"server {server_id} did not reach running within {ctx.config.boot_timeout:.0f}s",
        reason="ServerNeverBooted",
    )
    return Wait(ctx.config.poll_interval, f"server {state}")
