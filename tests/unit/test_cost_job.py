"""The fleet cost refresh with fakes at the network edge: Hetzner calls per refresh, status
writes only when a figure changes, the negative-margin Event, and budgets evaluated in the
same pass."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from aura.controller import naming
from aura.controller.clients.servercache import ServerCache
from aura.cost.job import CostService
from aura.cost.prices import PriceCache
from tests.fakes.hetzner import FakeHetzner
from tests.unit.test_cost_budget import SANDBOX_LIKE

NOW = datetime(2026, 12, 11, tzinfo=UTC)


class FakeCostKube:
    """Records the writes the job makes; serves budgets."""

    def __init__(self) -> None:
        self.agent_patches: list[tuple[str, dict[str, Any]]] = []
        self.budget_patches: list[dict[str, Any]] = []
        self.events: list[tuple[str, str]] = []
        self.budgets: list[dict[str, Any]] = []

    async def list_budgets(self, namespace: str | None) -> list[dict[str, Any]]:
        return self.budgets

    async def patch_agent_cost(self, namespace: str, name: str, cost: dict[str, Any]) -> None:
        self.agent_patches.append((name, cost))

    async def patch_budget_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        self.budget_patches.append(status)
        self.budgets[0]["status"] = status

    async def post_event(
        self, obj: dict[str, Any], type_: str, reason: str, message: str, *, kind: str
    ) -> None:
        self.events.append((obj["metadata"]["name"], reason))


def agents(n: int, cents: int) -> list[dict[str, Any]]:
    return [
        {
            "metadata": {"namespace": "team", "name": f"a{i}", "uid": f"uid-{i}"},
            "spec": {
                "billing": {"price": {"unitAmount": cents, "currency": "EUR", "interval": "month"}}
            },
            "status": {},
        }
        for i in range(n)
    ]


def test_refresh_calls_hetzner_per_fleet_and_writes_only_changes() -> None:
    async def run() -> None:
        hetzner = FakeHetzner()
        hetzner.pricing = SANDBOX_LIKE
        hetzner.clock = lambda: NOW - timedelta(hours=9, minutes=30)
        fleet = agents(20, 300)  # 3.00/month: below the projection -> negative
        for agent in fleet:
            uid = agent["metadata"]["uid"]
            labels = {naming.MANAGED_BY: naming.MANAGED_BY_VALUE, naming.AGENT_UID: uid}
            await hetzner.create_server(
                name=uid, server_type="cx22", location="fsn1", image="x", labels=labels,
                user_data="",
            )  # fmt: skip
        hetzner.calls.clear()
        kube = FakeCostKube()
        kube.budgets = [
            {
                "metadata": {"namespace": "team", "name": "b", "generation": 1},
                "spec": {"limit": 1.0, "thresholds": [{"percent": 100, "action": "BlockNew"}]},
                "status": {},
            }
        ]
        clock = [NOW]
        service = CostService(
            hetzner=hetzner,
            servers=ServerCache(hetzner, label_selector=naming.MANAGED_SELECTOR, max_age=30),
            prices=PriceCache(hetzner, monotonic=lambda: 0.0, wall=lambda: NOW),
            kube=kube,  # type: ignore[arg-type]
            list_agents=lambda ns: _const(fleet),
            namespace=None,
            interval=60,
            wall=lambda: clock[0],
        )
        assert await service.refresh() == 20
        # One refresh for 20 Agents: one GET /pricing, one server list, one snapshot list.
        assert dict(hetzner.calls) == {"get_pricing": 1, "list_servers": 1, "list_images": 1}
        _name, cost = kube.agent_patches[0]
        # Created 10 Dec 14:30, now 11 Dec 00:00: 9.5 h -> 10 h x (0.006 + 0.0008) = 0.068.
        # Projection to 1 Jan: 513.5 h -> 514 h (under both caps) x 0.0068 = 3.4952;
        # margin 3.00 - 3.4952 = -0.4952.
        assert cost["monthToDate"] == 0.068
        assert cost["projectedMonth"] == 3.4952
        assert cost["margin"] == -0.4952
        assert kube.events.count(("a0", "NegativeMargin")) == 1
        # Fleet spend 20 x 0.068 = 1.36 >= the 1.00 limit: the budget blocks.
        assert kube.budget_patches[-1]["blocking"] is True
        assert kube.budget_patches[-1]["currentSpend"] == 1.36
        # The written status becomes what the next refresh reads.
        for agent, (_, written) in zip(fleet, kube.agent_patches, strict=True):
            agent["status"]["cost"] = written
        kube.agent_patches.clear()
        budget_writes = len(kube.budget_patches)
        # Ten minutes later (9 h 40 min), still 10 billed hours: nothing to write.
        clock[0] = NOW + timedelta(minutes=10)
        assert await service.refresh() == 0
        assert kube.agent_patches == []
        assert len(kube.budget_patches) == budget_writes
        assert kube.events.count(("a0", "NegativeMargin")) == 1  # no second Event
        # At 10 h 40 min the 11th hour is billed: every Agent is written once.
        clock[0] = NOW + timedelta(minutes=70)
        assert await service.refresh() == 20
        assert hetzner.calls["get_pricing"] == 1  # the price list is cached for a day

    asyncio.run(run())


async def _const(value: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return value
