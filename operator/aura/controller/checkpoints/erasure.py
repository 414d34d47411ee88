"""The end of a retention window: a final checkpoint's image is erased, and the erasure is
recorded, so nothing is kept forever and nothing disappears silently.

Every sweep (`app._sweep_forever`, the active replica only) looks at the final checkpoints
(`final`); one whose `aura.dev/retain-until` has passed is erased unless an Agent that names
it in `spec.source` is still being created from it (a returning customer: the image is
needed until that Agent runs). Erasing, in this order, each step idempotent so a crash at any
point converges on the next sweep:

1. delete the Hetzner image (already gone counts as done; a locked image waits);
2. post the Event `CheckpointErased` on the Agent the checkpoint was taken of (what, when,
   by which rule; Events expire, hence step 3);
3. write the record into the AgentCheckpoint's status: phase `Erased`, `readyToUse: false`,
   `erasure: {time, imageID, rule}`. The object stays as the durable record (it holds ids
   and times, no customer data); deleting it is a person's decision.

A crash between 2 and 3 repeats the Event on the next sweep: twice rather than never.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime
from typing import Any

from aura.checkpoint_models import CHECKPOINT_PLURAL
from aura.controller import errors
from aura.controller.checkpoints.final import (
    ANNOTATION_RETAIN_UNTIL,
    LABEL_CUSTOMER,
    LABEL_FINAL,
    iso,
)
from aura.controller.clients.kube import AgentRef
from aura.controller.runtime import Operator

log = logging.getLogger("aura.erasure")
Obj = dict[str, Any]


def _until(item: Obj) -> datetime | None:
    value = (item["metadata"].get("annotations") or {}).get(ANNOTATION_RETAIN_UNTIL)
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None
    except ValueError:
        return None


def _in_use(name: str, namespace: str, agents: list[Obj]) -> bool:
    for agent in agents:
        spec, status = agent.get("spec") or {}, agent.get("status") or {}
        if agent["metadata"]["namespace"] != namespace:
            continue
        source = (spec.get("source") or {}).get("checkpoint")
        live = spec.get("desiredState") != "deleted" and status.get("phase") != "Running"
        if source == name and live:
            return True
    return False


async def sweep(op: Operator, agents: list[Obj]) -> int:
    """Erase every final checkpoint whose window has ended; returns how many were."""
    store = op.checkpoints
    if store is None:
        return 0
    now, erased = op.clock(), 0
    for item in await store.list(CHECKPOINT_PLURAL, op.config.namespace):
        meta, status = item["metadata"], item.get("status") or {}
        if (meta.get("labels") or {}).get(LABEL_FINAL) != "true":
            continue
        until = _until(item)
        if status.get("phase") == "Erased" or until is None or now < until:
            continue
        if meta.get("deletionTimestamp") or _in_use(meta["name"], meta["namespace"], agents):
            continue
        try:
            await _erase(op, item, until)
        except errors.AuraError as exc:  # the next sweep retries
            log.warning("erasing %s/%s: %s", meta["namespace"], meta["name"], exc)
            continue
        erased += 1
    return erased


async def _erase(op: Operator, item: Obj, until: datetime) -> None:
    assert op.checkpoints is not None
    meta, status = item["metadata"], item.get("status") or {}
    namespace, name = meta["namespace"], meta["name"]
    image_id = status.get("imageID")
    if image_id is not None:
        with contextlib.suppress(errors.NotFound):
            await op.hetzner.delete_image(int(image_id))
    customer = (meta.get("labels") or {}).get(LABEL_CUSTOMER, "none")
    rule = f"--retain-after-delete: kept until {iso(until)} (customer {customer})"
    source = status.get("source") or {}
    agent = AgentRef(namespace, item["spec"]["agentName"], source.get("agentUID") or "")
    what = f"image {image_id}" if image_id is not None else "no image (already gone)"
    await op.events.post(
        agent,
        "Normal",
        "CheckpointErased",
        f"erased {what} of final checkpoint {name} (taken {status.get('takenAt')}): {rule}",
    )
    now = op.clock()
    ready = {
        "type": "Ready",
        "status": "False",
        "reason": "Erased",
        "message": f"image erased at {now.isoformat()}: {rule}"[:4096],
        "lastTransitionTime": now.isoformat(),
    }
    kept = [c for c in status.get("conditions") or [] if c.get("type") != "Ready"]
    await op.checkpoints.patch_status(
        CHECKPOINT_PLURAL,
        namespace,
        name,
        {
            "phase": "Erased",
            "readyToUse": False,
            "imageID": None,
            "erasure": {"time": now.isoformat(), "imageID": image_id, "rule": rule},
            "conditions": [*kept, ready],
        },
    )
    log.info("erased %s of %s/%s: %s", what, namespace, name, rule)
