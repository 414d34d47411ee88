"""kopf registration of warm pools (controller/pool/): the AgentPool change and delete
handlers, and a timer that retires served members and refills. Each handler delegates in a
line; the shared Operator arrives as `memo.operator`."""

from __future__ import annotations

from typing import Any

import kopf

from aura.controller.pool.drive import drive_pool
from aura.controller.reconcile.context import Logger
from aura.controller.settings import OperatorConfig
from aura.models import GROUP, VERSION
from aura.pool_models import POOL_PLURAL

POOLS = (GROUP, VERSION, POOL_PLURAL)


def register(registry: kopf.OperatorRegistry, config: OperatorConfig) -> None:
    @kopf.on.create(*POOLS, registry=registry)
    @kopf.on.resume(*POOLS, registry=registry)
    @kopf.on.update(*POOLS, field="spec", registry=registry)
    async def agent_pool(
        body: kopf.Body, patch: kopf.Patch, memo: Any, logger: Logger, **_: Any
    ) -> None:
        await drive_pool(memo.operator, body, patch, logger, deleting=False)

    @kopf.on.delete(*POOLS, registry=registry)
    async def agent_pool_deleted(
        body: kopf.Body, patch: kopf.Patch, memo: Any, logger: Logger, **_: Any
    ) -> None:
        await drive_pool(memo.operator, body, patch, logger, deleting=True)

    # Members change state on their own (Running, claimed, handed over): look every poll.
    @kopf.timer(*POOLS, interval=config.poll_interval, idle=config.poll_interval, registry=registry)
    async def agent_pool_tick(
        body: kopf.Body, patch: kopf.Patch, memo: Any, logger: Logger, **_: Any
    ) -> None:
        await drive_pool(memo.operator, body, patch, logger, deleting=False, timer=True)
