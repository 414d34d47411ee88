"""The warm pool's size against the namespace's AgentBudgets (`pool.pool._target`): a new
member is priced at a full month and only fits under the lowest BlockNew ceiling."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import pytest

from aura.controller.pool.pool import PoolContext, _target
from aura.pool_models import AgentPoolSpec, AgentPoolStatus


class Budgets:
    def __init__(self, *budgets: dict[str, Any]) -> None:
        self.budgets = list(budgets)

    async def list_budgets(self, namespace: str | None) -> list[dict[str, Any]]:
        return self.budgets


def budget(limit: float, projected: float | None, block_at: int | None = 100) -> dict[str, Any]:
    thresholds = [{"percent": 80, "action": "Notify"}]
    if block_at is not None:
        thresholds.append({"percent": block_at, "action": "BlockNew"})
    status = {} if projected is None else {"currentSpend": projected / 2, "projected": projected}
    return {
        "metadata": {"name": "b"},
        "spec": {"limit": limit, "thresholds": thresholds},
        "status": status,
    }


def context(budgets: Budgets | None, *, min_: int = 5, max_: int = 8) -> PoolContext:
    op: Any = SimpleNamespace(budgets=budgets)
    return PoolContext(
        op=op,
        namespace="ns",
        name="warm",
        uid="u",
        generation=1,
        spec=AgentPoolSpec(image="runtime", min=min_, max=max_),
        status=AgentPoolStatus(),
        log=logging.getLogger("test"),
    )


@pytest.mark.parametrize(
    ("budgets", "live", "expected"),
    [
        (None, 0, (5, False)),  # no budget reader: spec.min
        (Budgets(), 0, (5, False)),  # no budget in the namespace
        (Budgets(budget(1000, 100)), 2, (5, False)),  # plenty of room
        # 100 left under the 100 % ceiling at 40/month: two more members, then it is capped.
        (Budgets(budget(300, 200)), 1, (3, True)),
        # The BlockNew threshold at 50 % is the ceiling: 150 - 140 = 10, not one more member.
        (Budgets(budget(300, 140, block_at=50)), 2, (2, True)),
        # Spend not computed yet while a BlockNew threshold exists: nothing new.
        (Budgets(budget(300, None)), 1, (1, True)),
        # Without any BlockNew threshold the limit itself is the ceiling.
        (Budgets(budget(300, 220, block_at=None)), 0, (2, True)),
        # The tightest of two budgets wins.
        (Budgets(budget(1000, 0), budget(100, 60)), 0, (1, True)),
    ],
)
async def test_pool_target_is_capped_by_the_budget(
    budgets: Budgets | None, live: int, expected: tuple[int, bool]
) -> None:
    assert await _target(context(budgets), 40.0, live) == expected


async def test_min_never_exceeds_max() -> None:
    assert await _target(context(None, min_=5, max_=3), 40.0, 0) == (3, False)
