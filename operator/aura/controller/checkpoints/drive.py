"""One pass over an AgentCheckpoint or AgentRestore for its kopf handler: parse, reconcile,
write status (only the changed keys), map the outcome to kopf's retries (`errors.to_kopf`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar, cast

import kopf
from pydantic import BaseModel

from aura.checkpoint_models import (
    AgentCheckpointSpec,
    AgentCheckpointStatus,
    AgentRestoreSpec,
    AgentRestoreStatus,
)
from aura.controller import errors
from aura.controller.checkpoints import checkpoint, restore
from aura.controller.checkpoints.context import ObjectContext, dump
from aura.controller.clients.kube import post_events
from aura.controller.driver import drive_timer, merge_patch
from aura.controller.reconcile.context import Logger, Wait
from aura.controller.runtime import Operator
from aura.models import PLURAL

S = TypeVar("S", bound=BaseModel)


def _base(op: Operator, body: kopf.Body, logger: Logger, status: Any) -> ObjectContext:
    meta = body["metadata"]
    return ObjectContext(
        op=op,
        namespace=meta["namespace"],
        name=meta["name"],
        uid=meta["uid"],
        generation=int(meta.get("generation") or 0),
        created=datetime.fromisoformat(meta["creationTimestamp"].replace("Z", "+00:00")),
        log=logger,
        conditions=status.conditions,
    )


async def _run(
    cx: ObjectContext,
    status: Any,
    patch: kopf.Patch,
    work: Callable[[], Awaitable[Any]],
    before: dict[str, Any],
) -> None:
    outcome: Any = None
    try:
        outcome = await work()
    except errors.AuraError as exc:
        outcome = exc
    finally:
        status.observed_generation = cx.generation
        for key, value in merge_patch(before, dump(status)).items():
            patch.status[key] = value
        if cx.agent is not None:
            await post_events(cx.op.events, cx.agent_ref(), cx.events, cx.log)
    if cx.released and cx.agent is not None:
        await _agent_pass(cx)
    if isinstance(outcome, Wait):
        raise kopf.TemporaryError(f"waiting: {outcome.reason}", delay=outcome.delay)
    if isinstance(outcome, errors.AuraError):
        raise errors.to_kopf(
            outcome,
            credentials_delay=cx.op.config.credentials_retry_delay,
            default_delay=cx.op.config.retry_backoff,
        )


async def _agent_pass(cx: ObjectContext) -> None:
    """Run the released Agent's own pass (as its timer would) and write its status, so its
    phase leaves Checkpointing/Restoring now rather than at its next health interval. Best
    effort: the timer does the same soon anyway."""
    ref = cx.agent_ref()
    try:
        fresh = await cx.store.get(PLURAL, ref.namespace, ref.name)
        if fresh is None:
            return
        agent_patch = kopf.Patch()
        await drive_timer(cx.op, kopf.Body(cast("kopf.RawBody", fresh)), agent_patch, cx.log)
        status = dict(agent_patch.get("status") or {})
        if status:
            await cx.store.patch_status(PLURAL, ref.namespace, ref.name, status)
    except Exception as exc:  # the Agent's timer converges it anyway
        cx.log.warning("could not run the pass of Agent %s: %s", ref.name, type(exc).__name__)


async def drive_checkpoint(
    op: Operator,
    body: kopf.Body,
    patch: kopf.Patch,
    logger: Logger,
    *,
    deleting: bool,
) -> None:
    spec = AgentCheckpointSpec.model_validate(dict(body.get("spec") or {}))
    status = AgentCheckpointStatus.model_validate(dict(body.get("status") or {}))
    before = dump(status)
    cx = checkpoint.new(_base(op, body, logger, status), spec, status)
    work = (lambda: checkpoint.finalize(cx)) if deleting else (lambda: checkpoint.reconcile(cx))
    await _run(cx, status, patch, work, before)


async def drive_restore(
    op: Operator,
    body: kopf.Body,
    patch: kopf.Patch,
    logger: Logger,
    *,
    deleting: bool,
) -> None:
    spec = AgentRestoreSpec.model_validate(dict(body.get("spec") or {}))
    status = AgentRestoreStatus.model_validate(dict(body.get("status") or {}))
    before = dump(status)
    cx = restore.new(_base(op, body, logger, status), spec, status)
    work = (lambda: restore.finalize(cx)) if deleting else (lambda: restore.reconcile(cx))
    await _run(cx, status, patch, work, before)
