"""One pass over an AgentImage for its kopf handler: parse, reconcile under the object's lock,
write the status keys that changed, post events, map the outcome to kopf's retries."""

from __future__ import annotations

from typing import Any

import kopf

from aura.controller import errors
from aura.controller.clients.kube import AgentRef, post_events
from aura.controller.driver import merge_patch, raise_outcome
from aura.controller.fleet_images import build
from aura.controller.reconcile.context import Logger
from aura.controller.runtime import Operator
from aura.image_models import IMAGE_KIND, AgentImageSpec, AgentImageStatus, dump


async def drive_image(
    op: Operator, body: kopf.Body, patch: kopf.Patch, logger: Logger, *, deleting: bool
) -> None:
    meta = body["metadata"]
    spec = AgentImageSpec.model_validate(dict(body.get("spec") or {}))
    status = AgentImageStatus.model_validate(dict(body.get("status") or {}))
    before = dump(status)
    cx = build.ImageContext(
        op=op,
        namespace=meta["namespace"],
        name=meta["name"],
        uid=meta["uid"],
        generation=int(meta.get("generation") or 0),
        spec=spec,
        status=status,
        log=logger,
    )
    outcome: Any = None
    # The change handler and the prune timer never run one AgentImage's pass at once.
    async with op.memory.locks[cx.uid]:
        try:
            if deleting:
                await build.finalize(cx)
            else:
                outcome = await build.reconcile(cx)
        except errors.AuraError as exc:
            outcome = exc
        finally:
            status.observed_generation = cx.generation
            for key, value in merge_patch(before, dump(status)).items():
                patch.status[key] = value
            ref = AgentRef(cx.namespace, cx.name, cx.uid)
            await post_events(op.events, ref, cx.events, logger, kind=IMAGE_KIND)
    if deleting:
        op.memory.locks.pop(cx.uid, None)
        if isinstance(outcome, errors.AuraError):
            raise_outcome(op, outcome)
        return
    raise_outcome(op, outcome)
