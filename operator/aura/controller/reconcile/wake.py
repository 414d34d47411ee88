"""Waking a hibernated Agent, and creating a server from a checkpoint (`status.serverSource`).

`running` after Hibernated: `status.hibernation.state` becomes Waking and `status.serverSource`
names the checkpoint's image (both written before any server exists); then the ordinary
running path runs: a provisioning attempt creates the server from that image with the same
tailnet hostname and a fresh single-use auth key (the old device was removed, so cloud-init
forgets the image's tailnet node), then boot, configure, tailnet, health. Phase Waking lasts
until the server runs; the normal path (Configuring, Networking) follows to Running, where
the hibernation record is cleared (the checkpoint stays: it is the newest ready one, what a
replacement starts from; the next hibernation replaces it).

A failed wake is a failed attempt: its rollback deletes the server, device and auth key (never
an image or a checkpoint) and the retry creates from the same image again.

`running` while still Hibernating, before the server was deleted, cancels the hibernation:
its checkpoint is deleted (its controller undoes whatever it did) and the server is powered on.

`serverSource` serves replacements too (replace.py, the repair ladder): the next server is
created from the Agent's newest ready checkpoint, and forgotten once the Agent is Running.
"""

from __future__ import annotations

from aura.checkpoint_models import CHECKPOINT_PLURAL
from aura.controller import conditions
from aura.controller.conditions import FALSE, UNKNOWN, Reason
from aura.controller.reconcile import hibernate
from aura.controller.reconcile.context import AgentContext, StepResult, Wait
from aura.controller.reconcile.source import WAKE
from aura.hibernation_models import HibernationState, ServerSource


async def before_running(ctx: AgentContext) -> StepResult | None:
    """Start a wake or cancel a hibernation; None: go on with the running path."""
    hib = ctx.status.hibernation
    if hib is None or hib.state == HibernationState.WAKING:
        return None
    if hib.state == HibernationState.HIBERNATING:
        if hib.server_delete_at is not None:
            return await hibernate.ensure_hibernated(ctx)  # finish the deletion, then wake
        if ctx.op.checkpoints is not None and hib.checkpoint:
            await ctx.op.checkpoints.delete(CHECKPOINT_PLURAL, ctx.ref.namespace, hib.checkpoint)
        ctx.status.hibernation = None
        ctx.event("Normal", "HibernationCancelled", f"running again; deleted {hib.checkpoint}")
        return None
    now = ctx.now().replace(microsecond=0)
    hib.state, hib.wake_started_at = HibernationState.WAKING, now
    if hib.image_id is not None:
        ctx.status.server_source = ServerSource(
            checkpoint=hib.checkpoint, image_id=hib.image_id, taken_at=hib.since, purpose=WAKE
        )
        what = f"checkpoint {hib.checkpoint} (image {hib.image_id})"
    else:
        ctx.status.server_source = None
        what = "a blank image (no checkpoint held the data)"
    ctx.status.stopped_at = None
    # Nothing of the hibernated state carries over: each is verified afresh on the new server
    # (a Hibernated reason left on one of them would summarise Ready back to Hibernated).
    for type_ in (conditions.CONFIGURED, conditions.TAILNET_JOINED, conditions.HEALTHY):
        ctx.set(type_, UNKNOWN, Reason.PENDING, "waking: verified once the server runs")
    ctx.set(conditions.SERVER_READY, FALSE, Reason.WAKING, f"creating a server from {what}")
    ctx.set(conditions.READY, FALSE, Reason.WAKING, f"waking from {what}")
    ctx.event("Normal", "Waking", f"creating a server from {what}")
    return Wait(0.1, "wake recorded")


def after_running(ctx: AgentContext) -> None:
    """The Agent is Ready: a wake or a replacement from a checkpoint is complete."""
    hib = ctx.status.hibernation
    if hib is not None and hib.state == HibernationState.WAKING:
        took = ctx.seconds_since(hib.wake_started_at)
        ctx.event(
            "Normal",
            "Woke",
            f"running again after {took:.0f}s, from checkpoint {hib.checkpoint or '(none)'} "
            f"(hibernated since {hib.since.isoformat() if hib.since else '?'})",
        )
        ctx.status.hibernation = None
    ctx.status.server_source = None
