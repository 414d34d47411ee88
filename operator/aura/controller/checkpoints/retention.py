"""Which checkpoints go: with their Agent, and by a schedule's keep / keepFor.

Deleting an Agent (or `desiredState: deleted`) deletes its `Delete`-policy AgentCheckpoints
(their finalizers delete the images) and keeps the `Retain` ones, whose images stay labelled
with the Agent's namespace and name.

Pruning only ever considers checkpoints the schedule created (label `aura.dev/scheduled`),
and never deletes: the newest ready one, a `Retain` one, one a restore in progress uses, or
one not finished yet.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aura.checkpoint_models import CHECKPOINT_PLURAL, RESTORE_PLURAL, CheckpointPolicy
from aura.controller.checkpoints.labels import SCHEDULED
from aura.controller.checkpoints.store import CheckpointStore, Obj
from aura.controller.reconcile.context import AgentContext
from aura.wire import parse_duration


def of_agent(items: list[Obj], agent: str) -> list[Obj]:
    return [c for c in items if (c.get("spec") or {}).get("agentName") == agent]


async def delete_with_agent(ctx: AgentContext) -> None:
    store = ctx.op.checkpoints
    if store is None:
        return
    for item in of_agent(await store.list(CHECKPOINT_PLURAL, ctx.ref.namespace), ctx.ref.name):
        name = item["metadata"]["name"]
        source_uid = ((item.get("status") or {}).get("source") or {}).get("agentUID")
        if source_uid not in (None, ctx.ref.uid):
            continue  # a checkpoint of an earlier Agent of the same name
        if item["spec"].get("deletionPolicy") == "Retain":
            continue
        await store.delete(CHECKPOINT_PLURAL, ctx.ref.namespace, name)
        ctx.event("Normal", "CheckpointDeleted", f"deleted checkpoint {name} with the Agent")


def _time(item: Obj, key: str) -> datetime | None:
    value = (item.get("status") or {}).get(key)
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _ready(item: Obj) -> bool:
    status = item.get("status") or {}
    return status.get("phase") == "Succeeded" and bool(status.get("readyToUse"))


def to_prune(
    checkpoints: list[Obj], restores: list[Obj], policy: CheckpointPolicy, now: datetime
) -> list[str]:
    """Names of the scheduled checkpoints `policy` lets go (see the module docstring)."""
    in_use = {
        (r.get("spec") or {}).get("checkpointName")
        for r in restores
        if (r.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
    }
    scheduled = [c for c in checkpoints if (c["metadata"].get("labels") or {}).get(SCHEDULED)]
    ready = sorted(
        (c for c in scheduled if _ready(c)),
        key=lambda c: _time(c, "takenAt") or now,
        reverse=True,
    )
    doomed: list[Any] = []
    for index, item in enumerate(ready):
        if index == 0:
            continue  # never the newest ready one
        too_many = policy.keep is not None and index >= policy.keep
        taken = _time(item, "takenAt")
        too_old = (
            policy.keep_for is not None
            and taken is not None
            and (now - taken).total_seconds() > parse_duration(policy.keep_for)
        )
        if too_many or too_old:
            doomed.append(item)
    newest = _time(ready[0], "takenAt") if ready else None
    for item in scheduled:  # failed ones older than the newest ready one are of no use
        failed = (item.get("status") or {}).get("phase") == "Failed"
        if failed and newest is not None and (_time(item, "startedAt") or now) < newest:
            doomed.append(item)
    return [
        c["metadata"]["name"]
        for c in doomed
        if c["spec"].get("deletionPolicy") != "Retain" and c["metadata"]["name"] not in in_use
    ]


async def prune(store: CheckpointStore, namespace: str, agent: str, policy: CheckpointPolicy,
                now: datetime) -> tuple[list[str], Obj | None]:  # fmt: skip
    """Delete what `to_prune` names; returns the names and the newest ready checkpoint."""
    checkpoints = of_agent(await store.list(CHECKPOINT_PLURAL, namespace), agent)
    restores = of_agent(await store.list(RESTORE_PLURAL, namespace), agent)
    names = to_prune(checkpoints, restores, policy, now)
    for name in names:
        await store.delete(CHECKPOINT_PLURAL, namespace, name)
    ready = [c for c in checkpoints if _ready(c) and c["metadata"]["name"] not in names]
    newest = max(ready, key=lambda c: _time(c, "takenAt") or now, default=None)
    return names, newest
