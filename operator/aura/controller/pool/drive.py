"""One pass over an AgentPool for its kopf handlers: parse, reconcile under the object's lock,
write the status keys that changed, post events, map the outcome to kopf's retries."""

from __future__ import annotations

from typing import Any

import kopf

from aura.controller import errors
from aura.controller.clients.kube import AgentRef, post_events
from aura.controller.driver import merge_patch, raise_outcome
from aura.controller.pool import pool
from aura.controller.reconcile.context import Logger, Wait
from aura.controller.runtime import Operator
from aura.pool_models import POOL_KIND, AgentPoolSpec, AgentPoolStatus, dump


async def drive_pool(
    op: Operator,
    body: kopf.Body,
    patch: kopf.Patch,
    logger: Logger,
    *,
    deleting: bool,
    timer: bool = False,
) -> None:
    meta = body["metadata"]
    status = AgentPoolStatus.model_validate(dict(body.get("status") or {}))
    before = dump(status)
    cx = pool.PoolContext(
        op=op,
        namespace=meta["namespace"],
        name=meta["name"],
        uid=meta["uid"],
        generation=int(meta.get("generation") or 0),
        spec=AgentPoolSpec.model_validate(dict(body.get("spec") or {})),
        status=status,
        log=logger,
    )
    outcome: Any = None
    async with op.memory.locks[cx.uid]:  # the change handler and the timer take turns
        try:
            if deleting:
                await pool.finalize(cx)
            else:
                outcome = await pool.reconcile(cx)
        except errors.AuraError as exc:
            outcome = exc
        finally:
            status.observed_generation = cx.generation
            for key, value in merge_patch(before, dump(status)).items():
                patch.status[key] = value
            ref = AgentRef(cx.namespace, cx.name, cx.uid)
            await post_events(op.events, ref, cx.events, logger, kind=POOL_KIND)
    if deleting:
        op.memory.locks.pop(cx.uid, None)
    if timer and isinstance(outcome, Wait):
        return  # the timer comes back on its own interval
    raise_outcome(op, outcome)
