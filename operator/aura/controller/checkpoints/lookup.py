"""The newest ready checkpoint of an Agent: what a replacement server or a wake starts from.

Ready means phase Succeeded, `readyToUse` and an image ID; only checkpoints of this very Agent
count (same name and, once the checkpoint recorded it, the same UID: an earlier Agent of the
same name is someone else's data).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from aura.checkpoint_models import CHECKPOINT_PLURAL
from aura.controller.checkpoints.store import Obj
from aura.controller.reconcile.context import AgentContext


@dataclass(frozen=True)
class ReadyCheckpoint:
    name: str
    image_id: int
    taken_at: datetime | None
    size_gb: float | None


def ready(item: Obj) -> ReadyCheckpoint | None:
    """`item` as a ReadyCheckpoint, or None when it is not ready to use."""
    status = item.get("status") or {}
    if status.get("phase") != "Succeeded" or not status.get("readyToUse"):
        return None
    if status.get("imageID") is None:
        return None
    taken = status.get("takenAt")
    return ReadyCheckpoint(
        name=item["metadata"]["name"],
        image_id=int(status["imageID"]),
        taken_at=datetime.fromisoformat(taken.replace("Z", "+00:00")) if taken else None,
        size_gb=status.get("sizeGB"),
    )


def _mine(ctx: AgentContext, item: Obj) -> bool:
    if (item.get("spec") or {}).get("agentName") != ctx.ref.name:
        return False
    uid = ((item.get("status") or {}).get("source") or {}).get("agentUID")
    return uid in (None, ctx.ref.uid)


async def newest_ready(ctx: AgentContext) -> ReadyCheckpoint | None:
    """The Agent's newest ready checkpoint (by takenAt), or None (also without a store)."""
    store = ctx.op.checkpoints
    if store is None:
        return None
    found = [
        r
        for item in await store.list(CHECKPOINT_PLURAL, ctx.ref.namespace)
        if _mine(ctx, item) and (r := ready(item)) is not None
    ]
    if not found:
        return None
    return max(found, key=lambda r: (r.taken_at is not None, r.taken_at or ctx.now()))


def age_phrase(ctx: AgentContext, at: datetime | None) -> str:
    """`at` as an age for an Event: '2h05m ago' (the window of changes a restore loses)."""
    if at is None:
        return "at an unknown time"
    seconds = max(0, int(ctx.seconds_since(at)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m ago"
    return f"{minutes}m{secs:02d}s ago" if minutes else f"{secs}s ago"
