"""Hibernation: the Agent's data goes into a checkpoint and its server is deleted.

Hetzner bills a server until it is deleted, powered off or not; a snapshot image costs cents
per GB-month. So `desiredState: hibernated` (or a stop that lasted `hibernateAfter`):

    Hibernating  recorded first (status.hibernation: the checkpoint's name, startedAt)
                 -> the server is shut down (ACPI, poweroff after --shutdown-timeout): a
                    powered-off disk is the most consistent one, and a failed checkpoint
                    leaves it off
                 -> an AgentCheckpoint `<agent>-hibernate-<time>` (labelled aura.dev/hibernation)
                    is created and taken by the checkpoint controller (checkpoints/checkpoint.py)
                 -> once it is ready: serverDeleteAt is recorded, then the server is deleted
                 -> the tailnet device (spec.lifecycle.tailnetOnHibernate: remove, the default)
                    and the spent auth key go; older hibernation checkpoints of the Agent go
    Hibernated   no server; status.hibernation says which checkpoint and image, since when, and
                 what it saves per month

Never is a server deleted whose data is not in a ready checkpoint: a failed checkpoint
records `failedAt` and the reason (Ready=False HibernationFailed, phase Failed), keeps the
server powered off, and tries a new checkpoint after --attempt-backoff-max. Every step reads
the world first, so a pass killed at any instant resumes: the checkpoint's name is in status
before it is created, the checkpoint controller is crash-safe on its own, and a server found
gone after `serverDeleteAt` is the deletion having happened. Waking is `wake.py`.
"""

from __future__ import annotations

import contextlib
from datetime import datetime

from aura.checkpoint_models import CHECKPOINT_KIND, CHECKPOINT_PLURAL
from aura.controller import conditions, errors, naming, shards
from aura.controller.checkpoints import lookup
from aura.controller.conditions import FALSE, Reason
from aura.controller.reconcile import cleanup, power, secrets
from aura.controller.reconcile.context import DONE, AgentContext, StepResult, Wait
from aura.controller.reconcile.server import find_server, record_server, server_gone
from aura.controller.reconcile.source import lifecycle
from aura.hibernation_models import (
    BUDGET_HOLD,
    HibernationCause,
    HibernationState,
    HibernationStatus,
    TailnetOnHibernate,
)
from aura.models import DesiredState
from aura.wire import API_VERSION, parse_duration

HIBERNATION_LABEL = "aura.dev/hibernation"
_SLEEPING = (HibernationState.HIBERNATING, HibernationState.HIBERNATED)


def hibernate_after(ctx: AgentContext) -> float:
    """Seconds stopped before automatic hibernation (0: never)."""
    after = lifecycle(ctx).hibernate_after
    return parse_duration(after) if after else ctx.config.hibernate_after


def held_by_budget(ctx: AgentContext) -> str | None:
    """The AgentBudget holding this Agent hibernated (aura/cost/hibernation.py), if any."""
    return ctx.annotations.get(BUDGET_HOLD) or None


def wanted(ctx: AgentContext) -> bool:
    """The Agent should hibernate, or stay hibernated: asked for, held by a budget, or an
    automatic hibernation of a stopped or suspended Agent under way or done (only `running`
    wakes it)."""
    desired = ctx.spec.desired_state
    if desired == DesiredState.HIBERNATED or held_by_budget(ctx) is not None:
        return True
    hib = ctx.status.hibernation
    stopped = desired in (DesiredState.STOPPED, DesiredState.SUSPENDED)
    return stopped and hib is not None and hib.state in _SLEEPING


def auto_due(ctx: AgentContext) -> bool:
    """A stopped or suspended Agent with a (powered-off) server has waited hibernateAfter."""
    after = hibernate_after(ctx)
    stopped_at = ctx.status.stopped_at
    has_server = ctx.status.server is not None and ctx.status.server.id is not None
    return (
        after > 0
        and has_server
        and stopped_at is not None
        and (ctx.seconds_since(stopped_at) >= after)
    )


def while_held(ctx: AgentContext) -> None:
    """The Agent is held by its own hibernation checkpoint: the phase stays Hibernating."""
    hib = ctx.status.hibernation
    held = ctx.op.holds.get(ctx.ref.uid, "").partition("/")[2] or ctx.status.checkpoint_in_progress
    if hib is not None and hib.state == HibernationState.HIBERNATING and held == hib.checkpoint:
        _say(ctx, f"checkpoint {hib.checkpoint} is being taken; the server is deleted after it")


def checkpoint_name(agent: str, at: datetime) -> str:
    return f"{agent[:220]}-hibernate-{at:%Y%m%d%H%M%S}"


def begin(ctx: AgentContext, cause: HibernationCause, attempts: int = 1) -> Wait:
    """Record the hibernation (and its checkpoint's name) before touching anything."""
    now = ctx.now()
    server_id = ctx.status.server.id if ctx.status.server else None
    hib = HibernationStatus(
        state=HibernationState.HIBERNATING,
        cause=cause,
        checkpoint=checkpoint_name(ctx.ref.name, now),
        started_at=now.replace(microsecond=0),
        server_id=server_id,
        attempts=attempts,
    )
    ctx.status.hibernation = hib
    ctx.status.server_source = None
    why = {
        HibernationCause.REQUESTED: "requested",
        HibernationCause.BUDGET: f"AgentBudget {held_by_budget(ctx)} reached its Hibernate "
        "threshold",
    }.get(cause) or _auto_phrase(ctx)
    _say(ctx, f"hibernating ({why}): checkpoint {hib.checkpoint} first, then the server goes")
    ctx.event("Normal", "Hibernating", f"{why}: taking checkpoint {hib.checkpoint}")
    return Wait(0.1, "hibernation recorded")


def _auto_phrase(ctx: AgentContext) -> str:
    return f"{ctx.spec.desired_state.value} for {hibernate_after(ctx):.0f}s (hibernateAfter)"


def _say(ctx: AgentContext, message: str) -> None:
    ctx.set(conditions.READY, FALSE, Reason.HIBERNATING, message)


async def ensure_hibernated(ctx: AgentContext) -> StepResult:
    """Converge towards Hibernated; see the module docstring."""
    hib = ctx.status.hibernation
    if ctx.spec.desired_state == DesiredState.HIBERNATED:
        cause = HibernationCause.REQUESTED
    elif held_by_budget(ctx) is not None:
        cause = HibernationCause.BUDGET
    else:
        cause = HibernationCause.AUTOMATIC
    if hib is None:
        return begin(ctx, cause)
    if hib.state == HibernationState.HIBERNATING:
        return await _hibernating(ctx, hib)
    server = await find_server(ctx)
    if server is not None and await server_gone(ctx, server.id):
        ctx.op.servers.forget(server.id)  # a list older than our delete
        server = None
    if server is not None:
        # A wake got as far as a server (or one appeared): its data may be newer than the
        # checkpoint, so it is checkpointed again rather than deleted.
        record_server(ctx, server)
        return begin(ctx, cause)
    if hib.state == HibernationState.WAKING:
        hib.state, hib.wake_started_at = HibernationState.HIBERNATED, None
        ctx.status.server_source = None
        message = f"wake cancelled before a server existed: still in {hib.checkpoint}"
        ctx.event("Normal", "Hibernated", message)
    mark_hibernated(ctx, hib)
    return DONE


async def _hibernating(ctx: AgentContext, hib: HibernationStatus) -> StepResult:
    if hib.failed_at is not None:
        wait = ctx.config.attempt_backoff_max - ctx.seconds_since(hib.failed_at)
        if wait > 0:
            return Wait(max(min(wait, ctx.config.poll_interval), 0.1), "hibernation failed")
        return begin(ctx, hib.cause, hib.attempts + 1)
    store = ctx.op.checkpoints
    if store is None:
        raise errors.Permanent("hibernation needs checkpoints", reason="NoCheckpoints")
    item = await store.get(CHECKPOINT_PLURAL, ctx.ref.namespace, hib.checkpoint)
    ready = lookup.ready(item) if item is not None else None
    server = await find_server(ctx)
    if server is None and ready is None:
        stored = ctx.status.server.id if ctx.status.server else None
        if stored is not None and not await server_gone(ctx, stored):
            return Wait(ctx.config.poll_interval, "server list lagging behind")
        return await _vanished(ctx, hib)
    if ready is None:
        assert server is not None
        record_server(ctx, server)
        if server.status != "off":
            result = await power.ensure_powered_off(ctx)
            _say(ctx, f"shutting down server {server.id} for checkpoint {hib.checkpoint}")
            if isinstance(result, Wait):
                return result
        return await _checkpoint(ctx, hib, item)
    hib.image_id, hib.size_gb = ready.image_id, ready.size_gb
    if server is not None:
        if hib.server_delete_at is None:
            hib.server_delete_at = ctx.now().replace(microsecond=0)
            _say(ctx, f"checkpoint {hib.checkpoint} is ready: deleting server {server.id}")
            return Wait(0.1, "server deletion recorded before it is sent")
        record_server(ctx, server)
        await cleanup.delete_servers(ctx)
    return await _finish(ctx, hib)


async def _checkpoint(
    ctx: AgentContext, hib: HibernationStatus, item: dict[str, object] | None
) -> StepResult:
    """Create the hibernation checkpoint (once: its name is fixed) and watch it."""
    assert ctx.op.checkpoints is not None
    poll = ctx.config.poll_interval
    if item is None:
        body = {
            "apiVersion": API_VERSION,
            "kind": CHECKPOINT_KIND,
            "metadata": {
                "name": hib.checkpoint,
                "namespace": ctx.ref.namespace,
                "labels": {
                    HIBERNATION_LABEL: "true",
                    naming.AGENT_UID: ctx.ref.uid,
                    **shards.own_label(ctx.config.shard),
                },
            },
            "spec": {"agentName": ctx.ref.name, "mode": "consistent", "deletionPolicy": "Delete"},
        }
        await ctx.op.checkpoints.create(CHECKPOINT_PLURAL, ctx.ref.namespace, body)
        _say(ctx, f"taking checkpoint {hib.checkpoint} of the powered-off server")
        return Wait(poll, "checkpoint created")
    status = item.get("status") or {}
    assert isinstance(status, dict)
    if status.get("phase") in ("Failed", "Deleting"):
        error = (status.get("error") or {}).get("message") or status.get("phase")
        hib.failed_at = ctx.now().replace(microsecond=0)
        hib.failure = f"checkpoint {hib.checkpoint} failed: {error}"[:1024]
        server_id = ctx.status.server.id if ctx.status.server else "?"
        message = (
            f"{hib.failure}; server {server_id} is kept (powered off) because its data is in "
            f"no ready checkpoint; a new checkpoint is tried in "
            f"{ctx.config.attempt_backoff_max:.0f}s"
        )
        ctx.set(conditions.READY, FALSE, Reason.HIBERNATION_FAILED, message)
        ctx.event("Warning", Reason.HIBERNATION_FAILED, message)
        return Wait(poll, "hibernation checkpoint failed")
    _say(ctx, f"checkpoint {hib.checkpoint} is {status.get('phase') or 'Pending'}")
    return Wait(poll, "checkpoint in progress")


async def _vanished(ctx: AgentContext, hib: HibernationStatus) -> StepResult:
    """The server disappeared before its checkpoint was ready: sleep on the newest ready
    checkpoint there is (the Event says how old), or on none (the data is lost)."""
    assert ctx.op.checkpoints is not None
    await ctx.op.checkpoints.delete(CHECKPOINT_PLURAL, ctx.ref.namespace, hib.checkpoint)
    newest = await lookup.newest_ready(ctx)
    if newest is None and hib.server_id is None:
        hib.checkpoint, hib.image_id, hib.size_gb = "", None, None  # never had a server
    elif newest is None:
        hib.checkpoint, hib.image_id, hib.size_gb = "", None, None
        lost = "no ready checkpoint: the data is lost; a wake starts blank"
        ctx.event("Warning", "ServerMissing", f"the server vanished during hibernation, {lost}")
    else:
        hib.checkpoint, hib.image_id, hib.size_gb = newest.name, newest.image_id, newest.size_gb
        ctx.event(
            "Warning",
            "ServerMissing",
            f"the server vanished during hibernation: sleeping on checkpoint {newest.name}, "
            f"taken {lookup.age_phrase(ctx, newest.taken_at)} (changes since then are lost)",
        )
    return await _finish(ctx, hib)


async def _finish(ctx: AgentContext, hib: HibernationStatus) -> StepResult:
    """The server is gone: device (by policy) and spent auth key go; Hibernated."""
    if lifecycle(ctx).tailnet_on_hibernate == TailnetOnHibernate.REMOVE:
        await cleanup.delete_devices(ctx)
    await secrets.delete_tailnet_key(ctx)
    ctx.status.server = None
    ctx.status.configured_revision = None
    ctx.status.shutdown_requested_at = None
    hib.state = HibernationState.HIBERNATED
    hib.since = ctx.now().replace(microsecond=0)
    hib.failed_at, hib.failure = None, None
    await _saving(ctx, hib)
    await _drop_older(ctx, hib.checkpoint)
    took = ctx.seconds_since(hib.started_at)
    saving = _saving_phrase(hib)
    if hib.server_id is None:
        ctx.event("Normal", "Hibernated", "no server existed: nothing to keep or delete")
    else:
        ctx.event(
            "Normal",
            "Hibernated",
            f"server {hib.server_id} deleted after {took:.0f}s; data in checkpoint "
            f"{hib.checkpoint or '(none)'} (image {hib.image_id}){saving}",
        )
    mark_hibernated(ctx, hib)
    return DONE


def mark_hibernated(ctx: AgentContext, hib: HibernationStatus) -> None:
    """Every condition says hibernated; Ready names the checkpoint, when, and the saving."""
    since = hib.since.isoformat() if hib.since else "?"
    for type_ in (conditions.SERVER_READY, conditions.CONFIGURED, conditions.TAILNET_JOINED,
                  conditions.HEALTHY):  # fmt: skip
        ctx.set(type_, FALSE, Reason.HIBERNATED, f"no server: hibernated since {since}")
    where = f"checkpoint {hib.checkpoint} (image {hib.image_id})" if hib.checkpoint else "no data"
    wakes = "desiredState running wakes it"
    if (budget := held_by_budget(ctx)) is not None:
        head = f"hibernated since {since}, held by AgentBudget {budget}"
        wakes = f"it wakes once AgentBudget {budget} releases it (raise its spec.limit)"
    elif hib.cause == HibernationCause.AUTOMATIC:
        head = f"hibernated automatically at {since} after being {_auto_phrase(ctx)}"
    else:
        head = f"hibernated since {since}"
    message = f"{head} in {where}{_saving_phrase(hib)}; {wakes}"
    ctx.set(conditions.READY, FALSE, Reason.HIBERNATED, message)


def _saving_phrase(hib: HibernationStatus) -> str:
    if hib.monthly_saving is None:
        return ""
    return f"; saves {hib.monthly_saving:.2f} {hib.currency or ''}/month".rstrip()


async def _saving(ctx: AgentContext, hib: HibernationStatus) -> None:
    """Server (and its primary IPv4) per month minus the image's storage per month."""
    if ctx.op.prices is None:
        return
    try:
        prices = await ctx.op.prices.get()
    except errors.AuraError:
        prices = None
    server = prices.server(ctx.spec.server.type, ctx.spec.server.location) if prices else None
    if prices is None or server is None:
        return
    ipv4 = prices.primary_ipv4.get(ctx.spec.server.location)
    kept = (hib.size_gb or 0.0) * prices.image_per_gb_month
    hib.monthly_saving = round(server.monthly + (ipv4.monthly if ipv4 else 0.0) - kept, 4)
    hib.currency = prices.currency


async def _drop_older(ctx: AgentContext, keep: str) -> None:
    """One hibernation checkpoint per Agent: the one it sleeps in (the older ones' images
    would be billed for nothing)."""
    store = ctx.op.checkpoints
    if store is None:
        return
    for item in await store.list(CHECKPOINT_PLURAL, ctx.ref.namespace):
        meta = item["metadata"]
        labels = meta.get("labels") or {}
        mine = labels.get(naming.AGENT_UID) == ctx.ref.uid and labels.get(HIBERNATION_LABEL)
        if mine and meta["name"] != keep:
            with contextlib.suppress(errors.NotFound):
                await store.delete(CHECKPOINT_PLURAL, ctx.ref.namespace, meta["name"])
            ctx.event("Normal", "CheckpointDeleted", f"older hibernation checkpoint {meta['name']}")
