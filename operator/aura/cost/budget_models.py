"""The AgentBudget custom resource as pydantic models (`crds/aura.dev_agentbudgets.yaml` is
generated from them by `aura crd --kind AgentBudget`).

A budget caps what the Agents of one namespace may cost per month. It never deletes
anything: its strongest action hibernates (snapshot + delete the server, keeping the disk),
its others notify or hold new servers back.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import ConfigDict, Field

from aura.cost.wire import CURRENCY_PATTERN, Wire
from aura.models import Condition

BUDGET_KIND = "AgentBudget"
BUDGET_PLURAL = "agentbudgets"
BUDGET_SINGULAR = "agentbudget"


class BudgetAction(StrEnum):
    NOTIFY = "Notify"
    BLOCK_NEW = "BlockNew"
    HIBERNATE = "Hibernate"


class HibernateOrder(StrEnum):
    NEWEST_FIRST = "NewestFirst"
    OLDEST_FIRST = "OldestFirst"
    COSTLIEST_FIRST = "CostliestFirst"


class Threshold(Wire):
    """At `percent` of the limit (spent, or projected with `projected: true`), do `action`."""

    percent: Annotated[int, Field(ge=1, le=1000, description="Percent of spec.limit.")]
    action: Annotated[BudgetAction, Field(description="Notify, BlockNew or Hibernate.")]
    projected: Annotated[
        bool,
        Field(
            default=False,
            description="Compare the projection to month end instead of the spend so far.",
        ),
    ]
    include_running: Annotated[
        bool,
        Field(
            default=False,
            description="Hibernate only: after the stopped and suspended Agents, hibernate "
            "running ones too, in `order`.",
        ),
    ]
    order: Annotated[
        HibernateOrder,
        Field(
            default=HibernateOrder.NEWEST_FIRST,
            description="Hibernate only: which running Agents go first.",
        ),
    ]


class AgentBudgetSpec(Wire):
    """A monthly limit for the Agents of this namespace."""

    limit: Annotated[float, Field(gt=0, description="Monthly limit, net of VAT.")]
    currency: Annotated[
        str,
        Field(
            default="EUR",
            pattern=CURRENCY_PATTERN,
            description="ISO 4217; must be the Hetzner project's currency.",
        ),
    ]
    reset_day: Annotated[
        int,
        Field(default=1, ge=1, le=28, description="Day of the month the window starts (UTC)."),
    ]
    thresholds: Annotated[
        list[Threshold],
        Field(
            min_length=1,
            max_length=16,
            description="Each a percent of the limit and an action.",
        ),
    ]


class ThresholdStatus(Wire):
    percent: int
    action: BudgetAction
    active: Annotated[bool, Field(default=False)]
    last_fired: Annotated[datetime | None, Field(default=None)]
    message: Annotated[str | None, Field(default=None, max_length=1024)]


class AgentBudgetStatus(Wire):
    model_config = ConfigDict(extra="ignore")

    currency: Annotated[str | None, Field(default=None)]
    current_spend: Annotated[float | None, Field(default=None)]
    projected: Annotated[float | None, Field(default=None)]
    percent: Annotated[float | None, Field(default=None, description="currentSpend / limit.")]
    window_start: Annotated[datetime | None, Field(default=None)]
    blocking: Annotated[
        bool, Field(default=False, description="A BlockNew threshold holds new servers back.")
    ]
    computed_at: Annotated[datetime | None, Field(default=None)]
    observed_generation: Annotated[int | None, Field(default=None)]
    thresholds: Annotated[list[ThresholdStatus], Field(default_factory=list)]
    conditions: Annotated[
        list[Condition],
        Field(
            default_factory=list,
            json_schema_extra={
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["type"],
            },
        ),
    ]
