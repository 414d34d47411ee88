"""Orphaned snapshot images: labelled by Aura, their AgentCheckpoint gone, and not `Retain`.

Runs beside the server/device sweeper (`reconcile/sweeper.py`), on the same interval and with
the same `--orphan-grace`: an image is deleted only after it has been unclaimed for the whole
grace, so one created a moment before its checkpoint's status recorded it is never touched.
Such orphans come from a checkpoint whose finalizer was stripped, or from a `create_image`
whose response was lost after its AgentCheckpoint was deleted. A `Retain` image is kept on
purpose: it is the point of the policy.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable

from aura.checkpoint_models import CHECKPOINT_PLURAL
from aura.controller import errors, metrics, naming
from aura.controller.checkpoints.labels import CHECKPOINT_UID, DELETION_POLICY
from aura.controller.fleet_images.labels import IMAGE_UID as GOLDEN_IMAGE_UID
from aura.controller.runtime import Operator

log = logging.getLogger("aura.sweeper")


class ImageSweeper:
    def __init__(self, op: Operator, clock: Callable[[], float] = time.monotonic) -> None:
        self._op = op
        self._clock = clock
        self._first_seen: dict[int, float] = {}

    async def sweep(self) -> int:
        """One pass; returns the number of images deleted."""
        store = self._op.checkpoints
        if store is None:
            return 0
        namespace = self._op.config.namespace
        images = await self._op.hetzner.list_images(naming.MANAGED_SELECTOR)
        claimed = {c["metadata"]["uid"] for c in await store.list(CHECKPOINT_PLURAL, namespace)}
        now, seen, deleted = self._clock(), set(), 0
        for image in images:
            labels = image.labels
            if labels.get(CHECKPOINT_UID) in claimed or labels.get(DELETION_POLICY) == "Retain":
                continue
            if GOLDEN_IMAGE_UID in labels:  # a golden image: fleet_images/ owns and prunes it
                continue
            if namespace and labels.get(naming.AGENT_NAMESPACE) != namespace:
                continue
            seen.add(image.id)
            first = self._first_seen.setdefault(image.id, now)
            if now - first < self._op.config.orphan_grace:
                continue
            log.warning("deleting orphaned image %s: its AgentCheckpoint is gone", image.id)
            with contextlib.suppress(errors.NotFound):
                await self._op.hetzner.delete_image(image.id)
            metrics.ORPHANS_DELETED.labels("image").inc()
            deleted += 1
        for gone in set(self._first_seen) - seen:
            del self._first_seen[gone]
        return deleted
