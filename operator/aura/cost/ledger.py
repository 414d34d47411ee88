"""One Agent's cost status from its recorded history and what Hetzner shows now (pure).

The history (`status.cost.servers` / `snapshots`) is the memory the model needs: Hetzner
forgets a server once it is deleted, but the bill does not. Each refresh merges the live
servers labelled with the Agent's UID into it (creation time and traffic from Hetzner), and
closes the entries whose server is no longer listed, at the refresh time. Entries deleted
before the previous calendar month are dropped: no bill needs them any more.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from aura.controller.clients.hetzner_api import ImageInfo, ServerInfo
from aura.cost import model
from aura.cost.wire import MAX_HISTORY, CostServer, CostSnapshot, CostStatus, SubscriptionPrice

_E = TypeVar("_E", CostServer, CostSnapshot)
_MONTHS_PER_INTERVAL = {"day": 12 / 365, "week": 12 / 52, "month": 1.0, "year": 12.0}


def merge_servers(
    history: list[CostServer], live: list[ServerInfo], *, now: datetime
) -> list[CostServer]:
    """The history with every live server added or refreshed and vanished ones closed."""
    by_id = {s.id: s for s in history}
    for server in live:
        if server.created is None or server.server_type is None or server.location is None:
            continue
        by_id[server.id] = CostServer(
            id=server.id,
            type=server.server_type,
            location=server.location,
            created=server.created,
            deleted=None,
            ipv4=server.ipv4 is not None,
            outgoing_traffic=server.outgoing_traffic or 0,
        )
    live_ids = {s.id for s in live}
    for sid, entry in by_id.items():
        if entry.deleted is None and sid not in live_ids:
            by_id[sid] = entry.model_copy(update={"deleted": now})
    return _prune(sorted(by_id.values(), key=lambda s: s.created), now)


def merge_snapshots(
    history: list[CostSnapshot], live: list[ImageInfo], *, now: datetime
) -> list[CostSnapshot]:
    """As `merge_servers`, for snapshot images (an image still `creating` has no size yet)."""
    by_id = {s.id: s for s in history}
    for snap in live:
        known = by_id.get(snap.id)
        created = snap.created or (known.created if known is not None else now)
        by_id[snap.id] = CostSnapshot(
            id=snap.id, image_size_gb=snap.image_size or 0.0, created=created
        )
    live_ids = {s.id for s in live}
    for sid, entry in by_id.items():
        if entry.deleted is None and sid not in live_ids:
            by_id[sid] = entry.model_copy(update={"deleted": now})
    return _prune(sorted(by_id.values(), key=lambda s: s.created), now)


def _prune(entries: list[_E], now: datetime) -> list[_E]:
    keep_after = model.month_start(model.month_start(now) - timedelta(days=1))
    kept = [e for e in entries if e.deleted is None or e.deleted >= keep_after]
    return kept[-MAX_HISTORY:]


def revenue_per_month(price: SubscriptionPrice) -> float:
    """The subscription's revenue per month, in the price's major currency unit."""
    per_interval = price.unit_amount * price.quantity / 100
    return per_interval / (_MONTHS_PER_INTERVAL[price.interval.value] * price.interval_count)


@dataclass(frozen=True)
class Computed:
    status: CostStatus
    cost: model.AgentCost


def compute(
    servers: list[CostServer],
    snapshots: list[CostSnapshot],
    prices: model.PriceList,
    price: SubscriptionPrice | None,
    *,
    now: datetime,
) -> Computed:
    """`status.cost` for this history at `now` (amounts rounded to 4 decimal places)."""
    lives = [
        model.ServerLife(s.id, s.type, s.location, s.created, s.deleted, s.ipv4, s.outgoing_traffic)
        for s in servers
    ]
    snaps = [model.SnapshotLife(x.id, x.image_size_gb, x.created, x.deleted) for x in snapshots]
    cost = model.agent_cost(lives, snaps, prices, now=now)
    revenue = margin = None
    message = None
    if cost.month_to_date.unpriced or cost.projected_month.unpriced:
        missing = ", ".join(cost.projected_month.unpriced or cost.month_to_date.unpriced)
        message = f"no Hetzner price for {missing}: those servers count as 0"
    if price is not None:
        revenue = round(revenue_per_month(price), 4)
        if price.currency == prices.currency:
            margin = round(revenue - cost.projected_month.total, 4)
        else:
            message = (
                f"subscription is in {price.currency}, Hetzner bills in {prices.currency}: "
                "no margin without an exchange rate"
            )
    status = CostStatus(
        currency=prices.currency,
        hourly_rate=round(cost.hourly_rate, 4),
        month_to_date=round(cost.month_to_date.total, 4),
        projected_month=round(cost.projected_month.total, 4),
        revenue_month=revenue,
        margin=margin,
        price_list_date=prices.as_of.replace(microsecond=0),
        computed_at=now,  # exact: the figures can be recomputed from it
        message=message,
        servers=servers,
        snapshots=snapshots,
    )
    return Computed(status=status, cost=cost)


def same_figures(old: CostStatus | None, new: CostStatus) -> bool:
    """True when writing `new` would change nothing but `computedAt`."""
    if old is None:
        return False
    return old.model_dump(exclude={"computed_at"}) == new.model_dump(exclude={"computed_at"})
