"""Wiring of cost and budgets into the operator: the periodic fleet refresh and the
AgentBudget watch (kopf handlers that re-evaluate a budget as soon as it changes)."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any

import kopf

from aura.controller.clients.kube import KubeClients
from aura.controller.peering import PeeringGate
from aura.controller.runtime import Operator
from aura.cost import metrics
from aura.cost.budget_models import BUDGET_PLURAL
from aura.cost.job import CostService
from aura.cost.kube import CostKube
from aura.cost.prices import PriceCache
from aura.models import GROUP, VERSION

log = logging.getLogger("aura.cost")
MAX_INTERVAL = 3600.0


def _wall() -> datetime:
    return datetime.now(UTC)


def build(op: Operator, kube: KubeClients) -> CostService:
    """The process's CostService; also installs the BlockNew gate's reader and the shared
    price list on `op`."""
    cost_kube = CostKube(kube.api)
    op.budgets = cost_kube
    op.prices = PriceCache(
        op.hetzner, max_age=op.config.price_max_age, monotonic=time.monotonic, wall=_wall
    )
    return CostService(
        hetzner=op.hetzner,
        servers=op.servers,
        prices=op.prices,
        kube=cost_kube,
        list_agents=kube.list_agents,
        namespace=op.config.namespace,
        interval=min(op.config.cost_interval, MAX_INTERVAL),
        wall=_wall,
    )


async def refresh_forever(service: CostService, gate: PeeringGate) -> None:
    """Refresh at once, then every `interval`, on the active peering replica only."""
    while True:
        try:
            if await gate.active():
                before = service.prices.refreshes
                await service.refresh()
                metrics.PRICE_REFRESHES.inc(service.prices.refreshes - before)
        except Exception as exc:  # the next pass retries; never let the job die
            log.warning("cost refresh failed: %s", exc)
        await asyncio.sleep(service.interval)


def register(registry: kopf.OperatorRegistry) -> None:
    """Re-evaluate an AgentBudget whenever it is created, resumed or its spec changes."""

    @kopf.on.create(GROUP, VERSION, BUDGET_PLURAL, registry=registry)
    @kopf.on.resume(GROUP, VERSION, BUDGET_PLURAL, registry=registry)
    @kopf.on.update(GROUP, VERSION, BUDGET_PLURAL, field="spec", registry=registry)
    async def budget_changed(body: kopf.Body, memo: Any, **_: Any) -> None:
        await memo.cost.evaluate_budget(dict(body))
