"""Which image the next server is created from when it is a checkpoint's (`status.serverSource`,
set by a wake or a replacement: wake.py, replace.py, repair.py), read by `server.py` and
`boot.py`. Kept apart so they need nothing of hibernation itself."""

from __future__ import annotations

from aura.controller.reconcile.context import AgentContext
from aura.hibernation_models import HibernationState, LifecyclePolicy, TailnetOnHibernate

WAKE, REPLACEMENT = "wake", "replacement"


def lifecycle(ctx: AgentContext) -> LifecyclePolicy:
    return ctx.spec.lifecycle or LifecyclePolicy()


def waking(ctx: AgentContext) -> bool:
    hib = ctx.status.hibernation
    return hib is not None and hib.state == HibernationState.WAKING


def source_image(ctx: AgentContext) -> int | None:
    """The checkpoint image the next server is created from, if any."""
    source = ctx.status.server_source
    return source.image_id if source is not None else None


def fresh_identity(ctx: AgentContext) -> bool:
    """The image's tailnet node must be forgotten: its device is gone (a replacement, or a wake
    under tailnetOnHibernate: remove)."""
    source = ctx.status.server_source
    if source is None:
        return False
    keep = lifecycle(ctx).tailnet_on_hibernate == TailnetOnHibernate.KEEP
    return not (source.purpose == WAKE and keep)
