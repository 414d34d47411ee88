"""kopf registration of golden images (controller/fleet_images/): the AgentImage change and
delete handlers, and a timer that prunes images whose last server went away. Each handler
delegates in a line; the shared Operator arrives as `memo.operator`."""

from __future__ import annotations

from typing import Any

import kopf

from aura.controller.fleet_images.drive import drive_image
from aura.controller.reconcile.context import Logger
from aura.controller.settings import OperatorConfig
from aura.image_models import IMAGE_PLURAL
from aura.models import GROUP, VERSION

IMAGES = (GROUP, VERSION, IMAGE_PLURAL)


def register(registry: kopf.OperatorRegistry, config: OperatorConfig) -> None:
    @kopf.on.create(*IMAGES, registry=registry)
    @kopf.on.resume(*IMAGES, registry=registry)
    @kopf.on.update(*IMAGES, field="spec", registry=registry)
    async def image(
        body: kopf.Body, patch: kopf.Patch, memo: Any, logger: Logger, **_: Any
    ) -> None:
        await drive_image(memo.operator, body, patch, logger, deleting=False)

    @kopf.on.delete(*IMAGES, registry=registry)
    async def image_deleted(
        body: kopf.Body, patch: kopf.Patch, memo: Any, logger: Logger, **_: Any
    ) -> None:
        await drive_image(memo.operator, body, patch, logger, deleting=True)

    @kopf.timer(
        *IMAGES,
        interval=config.sweep_interval,
        idle=config.sweep_interval,
        when=lambda status, **_: (status or {}).get("phase") == "Ready",
        registry=registry,
    )
    async def image_prune(
        body: kopf.Body, patch: kopf.Patch, memo: Any, logger: Logger, **_: Any
    ) -> None:
        await drive_image(memo.operator, body, patch, logger, deleting=False)
