"""An Agent held by a checkpoint or a restore: its power and delete actions wait.

KubeVirt locks a VM's source while a snapshot runs (`status.snapshotInProgress`) and unlocks
it once the snapshot is done or cleaned up; Aura does the same with the Agent's
`status.checkpointInProgress` / `status.restoreInProgress`. The holder sets the field (and the
in-process `Operator.holds`, under the Agent's reconcile lock, so a pass started from an older
watch event cannot slip in) before it touches the server, and clears it as its last step,
whether it succeeded, failed or was deleted.

The Agent's side is `wait_if_held`, called first by its reconcile and its finalizer: while held
it only reports `Ready=False` with reason Checkpointing or Restoring (phase of the same name)
and waits. A holder that no longer exists, or has finished, is a stale hold and is cleared.
"""

from __future__ import annotations

from aura.checkpoint_models import CHECKPOINT_PLURAL, RESTORE_PLURAL
from aura.controller import conditions
from aura.controller.conditions import FALSE, UNKNOWN, Reason
from aura.controller.reconcile.context import AgentContext, Wait
from aura.controller.runtime import Operator
from aura.models import PLURAL

CHECKPOINT = "checkpointInProgress"
RESTORE = "restoreInProgress"
_PLURALS = {CHECKPOINT: CHECKPOINT_PLURAL, RESTORE: RESTORE_PLURAL}
_REASONS = {CHECKPOINT: Reason.CHECKPOINTING, RESTORE: Reason.RESTORING}
_WORDS = {CHECKPOINT: "checkpoint", RESTORE: "restore"}
_FINISHED = {"Succeeded", "Failed"}


def _key(field: str, name: str) -> str:
    return f"{field}/{name}"


async def acquire(op: Operator, namespace: str, agent: str, uid: str, field: str, name: str) -> str:
    """Hold the Agent for `name`; "" when held now, else what holds it (or why not)."""
    assert op.checkpoints is not None
    mine = _key(field, name)
    async with op.memory.locks[uid]:
        fresh = await op.checkpoints.get(PLURAL, namespace, agent)
        if fresh is None or fresh["metadata"]["uid"] != uid:
            return f"Agent {agent} is gone"
        status = fresh.get("status") or {}
        for other in (CHECKPOINT, RESTORE):
            holder = status.get(other)
            if holder and _key(other, holder) != mine:
                return f"{_WORDS[other]} {holder} holds Agent {agent}"
        in_memory = op.holds.get(uid)
        if in_memory and in_memory != mine:
            other, _, holder = in_memory.partition("/")
            return f"{_WORDS[other]} {holder} holds Agent {agent}"
        op.holds[uid] = mine
        if status.get(field) != name:
            try:
                await op.checkpoints.patch_status(PLURAL, namespace, agent, {field: name})
            except BaseException:
                del op.holds[uid]
                raise
    return ""


async def release(
    op: Operator, namespace: str, agent: str, uid: str, field: str, name: str
) -> None:
    """Let go of the Agent, if `name` holds it; idempotent.

    A restore leaves its name in the Agent's status: the Agent's own pass clears it once the
    restore has finished and re-verifies everything the new disk may have changed
    (`wait_if_held`).
    """
    assert op.checkpoints is not None
    async with op.memory.locks[uid]:
        if op.holds.get(uid) == _key(field, name):
            del op.holds[uid]
        if field == RESTORE:
            return
        fresh = await op.checkpoints.get(PLURAL, namespace, agent)
        if fresh is None or fresh["metadata"]["uid"] != uid:
            return
        if (fresh.get("status") or {}).get(field) == name:
            await op.checkpoints.patch_status(PLURAL, namespace, agent, {field: None})


async def wait_if_held(ctx: AgentContext) -> Wait | None:
    """The Agent-side hook: Wait while a live checkpoint or restore holds the Agent."""
    uid = ctx.ref.uid
    held = ctx.op.holds.get(uid)
    if held is not None:
        field, _, name = held.partition("/")
    elif ctx.status.checkpoint_in_progress:
        field, name = CHECKPOINT, ctx.status.checkpoint_in_progress
    elif ctx.status.restore_in_progress:
        field, name = RESTORE, ctx.status.restore_in_progress
    else:
        return None
    if held is None and not await _holder_alive(ctx, field, name):
        if field == CHECKPOINT:
            ctx.log.warning("clearing a stale hold of checkpoint %s", name)
            ctx.status.checkpoint_in_progress = None
        else:
            _after_restore(ctx, name)
        return None
    word = _WORDS[field]
    ctx.set(
        conditions.READY,
        FALSE,
        _REASONS[field],
        f"{word} {name} in progress: power and delete actions wait for it",
    )
    return Wait(ctx.config.poll_interval, f"held by {word} {name}")


def _after_restore(ctx: AgentContext, name: str) -> None:
    """The disk is the checkpoint's now: verify configuration, tailnet and health afresh, so the
    Agent takes the normal path back (Starting, Configuring, Networking, Running)."""
    ctx.status.restore_in_progress = None
    ctx.status.configured_revision = None
    for type_ in (conditions.CONFIGURED, conditions.TAILNET_JOINED, conditions.HEALTHY):
        ctx.set(type_, UNKNOWN, Reason.PENDING, f"restored from {name}: verifying")
    ctx.set(conditions.SERVER_READY, FALSE, Reason.STARTING, f"restored from {name}")
    ctx.event("Normal", "RestoredFromCheckpoint", f"server rebuilt by restore {name}")


async def _holder_alive(ctx: AgentContext, field: str, name: str) -> bool:
    store = ctx.op.checkpoints
    if store is None:
        return False
    holder = await store.get(_PLURALS[field], ctx.ref.namespace, name)
    if holder is None:
        return False
    return (holder.get("status") or {}).get("phase") not in _FINISHED
