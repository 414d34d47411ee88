"""The cost sections of the Agent (`spec.billing.price`, `status.cost`) as pydantic models.

They live apart from `aura.models` to keep that module small; `aura.models` embeds them, so
the generated CRD carries their schema.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

CURRENCY_PATTERN = r"^[A-Z]{3}$"
MAX_HISTORY = 32


class Wire(BaseModel):
    """camelCase on the wire, no unknown fields (as `aura.models._Wire`)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class PriceInterval(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    YEAR = "year"


class SubscriptionPrice(Wire):
    """The Stripe price the Agent is paid by; recorded by the bridge."""

    unit_amount: Annotated[
        int, Field(ge=0, description="Amount per interval in the currency's minor unit (cents).")
    ]
    currency: Annotated[str, Field(pattern=CURRENCY_PATTERN, description="ISO 4217, e.g. EUR.")]
    interval: Annotated[PriceInterval, Field(description="day, week, month or year.")]
    interval_count: Annotated[int, Field(default=1, ge=1, le=365)]
    quantity: Annotated[int, Field(default=1, ge=1)]


class CostServer(Wire):
    """One server the Agent had, kept so a restart does not forget what it cost."""

    id: int
    type: Annotated[str, Field(max_length=16)]
    location: Annotated[str, Field(max_length=8)]
    created: datetime
    deleted: Annotated[datetime | None, Field(default=None)]
    ipv4: Annotated[bool, Field(default=True)]
    outgoing_traffic: Annotated[
        int, Field(default=0, ge=0, description="Bytes sent this billing period, last seen.")
    ]


class CostSnapshot(Wire):
    """One snapshot image kept for the Agent."""

    id: int
    image_size_gb: Annotated[float, Field(ge=0)]
    created: datetime
    deleted: Annotated[datetime | None, Field(default=None)]


class CostStatus(Wire):
    """What the Agent costs and earns (net, VAT excluded); see README "Cost"."""

    model_config = ConfigDict(extra="ignore")

    currency: Annotated[str | None, Field(default=None)]
    hourly_rate: Annotated[float | None, Field(default=None)]
    month_to_date: Annotated[float | None, Field(default=None)]
    projected_month: Annotated[float | None, Field(default=None)]
    revenue_month: Annotated[
        float | None, Field(default=None, description="Subscription revenue per month.")
    ]
    margin: Annotated[
        float | None, Field(default=None, description="revenueMonth - projectedMonth.")
    ]
    price_list_date: Annotated[datetime | None, Field(default=None)]
    computed_at: Annotated[datetime | None, Field(default=None)]
    message: Annotated[str | None, Field(default=None, max_length=1024)]
    servers: Annotated[list[CostServer], Field(default_factory=list, max_length=MAX_HISTORY)]
    snapshots: Annotated[list[CostSnapshot], Field(default_factory=list, max_length=MAX_HISTORY)]
