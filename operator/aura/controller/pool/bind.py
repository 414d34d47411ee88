"""A new Agent takes a warm server from a pool (the server step's hook, before any create).

Only a new Agent's first server comes from a pool: never a builder's or a member's, never a
clone's (its checkpoint is its disk), never an Agent that was configured before (a server
replaced or an Agent waking up needs its own data back). A member fits when it is Running and
unclaimed and has the Agent's server type, location, base image and runtime version.

The hand-over, each step idempotent and safe to repeat after a kill:

1. claim: `CLAIMED_BY=<uid>` on the member, compare-and-swap on its resourceVersion (a lost
   race tries the next member; an Agent that already holds a claim resumes it);
2. SSH: the member's key pair and pinned host key are copied into the Agent's own SSH Secret
   (the server trusts that key; the configurator pins that host key);
3. commit: the server is renamed and relabelled to the Agent (`POOL_SERVED`, `POOL_DEVICE`),
   and the device the member recorded becomes the Agent's (no call: the member's status has
   it; a pass killed after the commit reads it back by the label, `finish`).

The Agent then goes on as with any server of its own, except that its configure step pushes
only the customer's configuration and token and restarts the gateway (`handover.py`) instead of
running the whole playbook, and meanwhile gives the device the Agent's tags and name
(`retag`), then the tailnet and health steps. Both run until Configured is written, so a
pass killed before that repeats them (each is idempotent). The pool sees the member handed over
and deletes it, which removes only the member's own Secrets, and refills.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from aura.controller import conditions, errors, naming
from aura.controller.clients.hetzner_api import ServerInfo
from aura.controller.clients.kube import AgentRef
from aura.controller.conditions import TRUE, Reason
from aura.controller.fleet_images.labels import BUILDER_ANNOTATION, GOLDEN_IMAGE
from aura.controller.pool.labels import CLAIMED_BY, POOL, POOL_DEVICE, POOL_SERVED
from aura.controller.pool.members import annotations_of
from aura.controller.reconcile.context import AgentContext
from aura.models import DEFAULT_GATEWAY_PORT, PLURAL, TailnetStatus


def fits(ctx: AgentContext, member: dict[str, Any]) -> bool:
    """A Running, unclaimed member of the Agent's kind of server, runtime version and gateway
    port."""
    meta, spec = member["metadata"], member.get("spec") or {}
    status = member.get("status") or {}
    server, runtime = spec.get("server") or {}, spec.get("runtime") or {}
    return (
        POOL in annotations_of(member)
        and CLAIMED_BY not in annotations_of(member)
        and not meta.get("deletionTimestamp")
        and status.get("phase") == "Running"
        and (status.get("server") or {}).get("id") is not None
        and (status.get("tailscale") or {}).get("deviceId") is not None
        and server.get("type") == ctx.spec.server.type
        and server.get("location") == ctx.spec.server.location
        and server.get("image") == ctx.spec.server.image
        and runtime.get("openclawVersion") == ctx.spec.runtime.openclaw_version
        # The firewall admits the gateway port: a push of the configuration cannot move it.
        and runtime.get("gatewayPort", DEFAULT_GATEWAY_PORT) == ctx.spec.runtime.gateway_port
    )


async def take(ctx: AgentContext) -> ServerInfo | None:
    """The warm server this Agent now owns, or None (no pool, none fits: create one)."""
    store = ctx.op.checkpoints
    if store is None or ctx.spec.source is not None:
        return None
    if POOL in ctx.annotations or BUILDER_ANNOTATION in ctx.annotations:
        return None
    if ctx.status.configured_revision is not None:
        return None  # it had a server of its own before (replaced, waking): its data, not ours
    # Only the pool members (labelled with their pool), not every Agent of the namespace: a
    # burst of N new Agents must not make N lists of N Agents.
    agents = await store.list(PLURAL, ctx.ref.namespace, label_selector=POOL)
    member = next(
        (a for a in agents if annotations_of(a).get(CLAIMED_BY) == ctx.ref.uid
         and POOL in annotations_of(a)),
        None,
    )  # fmt: skip
    if member is None:
        for candidate in _spread(ctx, [a for a in agents if fits(ctx, a)]):
            meta = candidate["metadata"]
            claim = {"resourceVersion": meta["resourceVersion"],
                     "annotations": {CLAIMED_BY: ctx.ref.uid}}  # fmt: skip
            if await store.patch(PLURAL, ctx.ref.namespace, meta["name"], {"metadata": claim}):
                member = candidate
                break
    if member is None:
        return None
    return await _hand_over(ctx, member)


def _spread(ctx: AgentContext, candidates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The candidates oldest first, rotated by the Agent's UID: a burst of new Agents starts
    at different members instead of all racing for the oldest (a lost race costs one PATCH)."""
    ordered = sorted(candidates, key=lambda a: a["metadata"]["creationTimestamp"])
    if not ordered:
        return ordered
    start = int(naming.short_hash(ctx.ref.uid, 8), 16) % len(ordered)
    return ordered[start:] + ordered[:start]


async def _hand_over(ctx: AgentContext, member: dict[str, Any]) -> ServerInfo:
    meta, status = member["metadata"], member.get("status") or {}
    server_id = int(status["server"]["id"])
    device = TailnetStatus.model_validate(status["tailscale"])
    owner = AgentRef(meta["namespace"], meta["name"], meta["uid"])
    await _copy_ssh(ctx, owner)
    server = await ctx.op.hetzner.get_server(server_id)
    labels = {
        **naming.server_labels(ctx.ref),
        POOL_SERVED: naming.label_value(annotations_of(member)[POOL]),
        POOL_DEVICE: naming.label_value(str(device.device_id)),
    }
    if GOLDEN_IMAGE in server.labels:
        labels[GOLDEN_IMAGE] = server.labels[GOLDEN_IMAGE]
    await ctx.op.hetzner.update_server(server_id, name=ctx.server_name, labels=labels)
    server = dataclasses.replace(server, name=ctx.server_name, labels=labels)  # as just written
    ctx.op.servers.remember(server)
    _record(ctx, device)
    ctx.event(
        "Normal",
        "TookPooledServer",
        f"took warm server {server_id} from pool {annotations_of(member)[POOL]}",
    )
    return server


async def _copy_ssh(ctx: AgentContext, owner: AgentRef) -> None:
    data = await ctx.op.secrets.get(owner.namespace, naming.ssh_secret(owner))
    if data is None:
        raise errors.Retryable(f"the SSH Secret of pool member {owner.name} is missing")
    name = naming.ssh_secret(ctx.ref)
    mine = await ctx.op.secrets.get(ctx.ref.namespace, name)
    if mine == data:
        return
    if mine is not None:  # left by an earlier, rolled-back attempt: the pooled server's wins
        await ctx.op.secrets.delete(ctx.ref.namespace, name)
    if not await ctx.op.secrets.create(ctx.ref, name, data, naming.secret_labels(ctx.ref, "ssh")):
        raise errors.Retryable(f"SSH Secret {name} was created concurrently; retrying")


async def record_device(ctx: AgentContext, device_id: str) -> None:
    """Record the pooled server's device, read from the tailnet, as the Agent's."""
    device = await ctx.op.tailnet.get_device(device_id)
    _record(
        ctx,
        TailnetStatus(
            device_id=device.id,
            hostname=device.hostname,
            ipv4=device.ipv4,
            ipv6=device.ipv6,
            online=device.online,
        ),
    )


def _record(ctx: AgentContext, device: TailnetStatus) -> None:
    """The device is the Agent's (so configuration goes over the tailnet at once: the pooled
    server's firewall admits SSH only there)."""
    ctx.status.tailscale = device
    message = f"device {device.device_id} of the warm server joined as {device.hostname}"
    ctx.set(conditions.TAILNET_JOINED, TRUE, Reason.JOINED, message)


async def retag(ctx: AgentContext) -> None:
    """Give the handed-over device the Agent's tags and MagicDNS name (idempotent)."""
    device_id = ctx.status.tailscale.device_id if ctx.status.tailscale else None
    if not device_id:
        return
    await ctx.op.tailnet.set_device_tags(device_id, ctx.tags)
    try:
        await ctx.op.tailnet.set_device_name(device_id, ctx.hostname)
    except errors.Retryable as exc:  # the name is taken: cosmetic, the device ID is recorded
        ctx.log.warning("could not rename device %s: %s", device_id, exc)


async def finish(ctx: AgentContext, server: ServerInfo) -> None:
    """A pass killed after the commit point: record the device the server's label names."""
    device_id = server.labels.get(POOL_DEVICE)
    if device_id and (ctx.status.tailscale is None or not ctx.status.tailscale.device_id):
        await record_device(ctx, device_id)
