"""kopf registration of the checkpoint controller (controller/checkpoints/): AgentCheckpoint
and AgentRestore change and delete handlers, and the per-Agent schedule timer. Each handler
delegates in a line; the shared Operator arrives as `memo.operator`."""

from __future__ import annotations

from typing import Any

import kopf

from aura.checkpoint_models import CHECKPOINT_PLURAL, RESTORE_PLURAL
from aura.controller.checkpoints import schedule
from aura.controller.checkpoints.drive import drive_checkpoint, drive_restore
from aura.controller.reconcile.context import Logger
from aura.controller.settings import OperatorConfig
from aura.models import GROUP, PLURAL, VERSION

CHECKPOINTS = (GROUP, VERSION, CHECKPOINT_PLURAL)
RESTORES = (GROUP, VERSION, RESTORE_PLURAL)


def register(registry: kopf.OperatorRegistry, config: OperatorConfig) -> None:
    @kopf.on.create(*CHECKPOINTS, registry=registry)
    @kopf.on.resume(*CHECKPOINTS, registry=registry)
    @kopf.on.update(*CHECKPOINTS, field="spec", registry=registry)
    async def checkpoint(
        body: kopf.Body, patch: kopf.Patch, memo: Any, logger: Logger, **_: Any
    ) -> None:
        await drive_checkpoint(memo.operator, body, patch, logger, deleting=False)

    @kopf.on.delete(*CHECKPOINTS, registry=registry)
    async def checkpoint_deleted(
        body: kopf.Body, patch: kopf.Patch, memo: Any, logger: Logger, **_: Any
    ) -> None:
        await drive_checkpoint(memo.operator, body, patch, logger, deleting=True)

    @kopf.on.create(*RESTORES, registry=registry)
    @kopf.on.resume(*RESTORES, registry=registry)
    async def restore(
        body: kopf.Body, patch: kopf.Patch, memo: Any, logger: Logger, **_: Any
    ) -> None:
        await drive_restore(memo.operator, body, patch, logger, deleting=False)

    @kopf.on.delete(*RESTORES, registry=registry)
    async def restore_deleted(
        body: kopf.Body, patch: kopf.Patch, memo: Any, logger: Logger, **_: Any
    ) -> None:
        await drive_restore(memo.operator, body, patch, logger, deleting=True)

    @kopf.timer(
        GROUP,
        VERSION,
        PLURAL,
        interval=config.checkpoint_schedule_interval,
        when=lambda spec, **_: bool(spec.get("checkpoints")),
        registry=registry,
    )
    async def checkpoint_schedule(
        body: kopf.Body, patch: kopf.Patch, memo: Any, logger: Logger, **_: Any
    ) -> None:
        op = memo.operator
        summary = await schedule.tick(
            op.checkpoints, dict(body), op.config.checkpoint_jitter, logger
        )
        if (body.get("status") or {}).get("checkpoints") != summary:
            patch.status["checkpoints"] = summary
