"""What an Agent costs on Hetzner: a pure model of Hetzner's billing rules.

No I/O and no clock: every function takes the facts and the time it should price at.

The rules (Hetzner billing FAQ; README "Cost, revenue and budgets"):
- every server the Agent ever had is billed from its creation to its deletion, whatever its
  power state (an `off` server costs the same as a running one);
- the hours are rounded up per server and calendar month, and the month's amount is capped at
  the monthly price: `min(ceil(hours) x hourly, monthly)`;
- a replaced server is a second server with its own rounding and its own cap;
- a server with a public IPv4 pays the primary IPv4 the same way (hourly, capped monthly);
- snapshot storage is `image_size` (GB) x price per GB-month, pro rata over the hours the
  snapshot existed in the month (rounded up) divided by the hours of that calendar month;
- outgoing traffic above the server's included volume is billed per TB (1 TB = 2**40 bytes,
  the unit Hetzner's `included_traffic` is expressed in).

All amounts are net (VAT excluded) in the price list's currency.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

TB = 1024**4
HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class ServerPrice:
    """Net prices of one server type in one location."""

    hourly: float
    monthly: float
    included_traffic: int = 0
    """Bytes of outgoing traffic included per month."""
    per_tb_traffic: float = 0.0


@dataclass(frozen=True)
class PriceList:
    """The prices the model needs, as read from `GET /pricing` at `as_of`."""

    currency: str
    as_of: datetime
    servers: dict[tuple[str, str], ServerPrice]
    """(server type, location) -> prices."""
    primary_ipv4: dict[str, ServerPrice] = field(default_factory=dict)
    """location -> primary IPv4 prices (hourly and monthly only)."""
    image_per_gb_month: float = 0.0

    def server(self, server_type: str, location: str) -> ServerPrice | None:
        return self.servers.get((server_type, location))


@dataclass(frozen=True)
class ServerLife:
    """One server an Agent had: when it existed and what it used."""

    id: int
    server_type: str
    location: str
    created: datetime
    deleted: datetime | None = None
    ipv4: bool = True
    outgoing_traffic: int = 0
    """Bytes sent in the current billing period (Hetzner's `outgoing_traffic`)."""


@dataclass(frozen=True)
class SnapshotLife:
    """One snapshot image kept for an Agent."""

    id: int
    image_size_gb: float
    created: datetime
    deleted: datetime | None = None


@dataclass(frozen=True)
class Breakdown:
    """Amounts per cost line over one window."""

    servers: float = 0.0
    ipv4: float = 0.0
    snapshots: float = 0.0
    traffic: float = 0.0
    unpriced: tuple[str, ...] = ()
    """Server types or locations missing from the price list (their lines count as 0)."""

    @property
    def total(self) -> float:
        return self.servers + self.ipv4 + self.snapshots + self.traffic


@dataclass(frozen=True)
class AgentCost:
    """The figures `status.cost` shows, all net, in `currency`."""

    currency: str
    hourly_rate: float
    month_to_date: Breakdown
    projected_month: Breakdown


def month_start(at: datetime) -> datetime:
    """Midnight UTC of the first day of `at`'s calendar month."""
    at = at.astimezone(UTC)
    return at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month_start(at: datetime) -> datetime:
    start = month_start(at)
    return (start + timedelta(days=32)).replace(day=1)


def hours_in_month(at: datetime) -> float:
    return (next_month_start(at) - month_start(at)) / HOUR


def billed_hours(start: datetime, end: datetime) -> int:
    """Whole hours billed for [start, end): rounded up, so a few minutes cost one hour."""
    seconds = (end - start).total_seconds()
    if seconds <= 0:
        return 0
    return math.ceil(seconds / 3600 - 1e-9)


def _overlap(
    created: datetime, deleted: datetime | None, start: datetime, end: datetime
) -> tuple[datetime, datetime]:
    lo = max(created, start)
    hi = min(deleted, end) if deleted is not None else end
    return lo, hi


def capped(hours: int, price: ServerPrice) -> float:
    """One calendar month of one server: hours x hourly, at most the monthly price."""
    return min(hours * price.hourly, price.monthly)


def traffic_overage(outgoing: int, price: ServerPrice) -> float:
    """Outgoing bytes above the included volume, priced per TB."""
    return max(0, outgoing - price.included_traffic) / TB * price.per_tb_traffic


def month_cost(
    servers: list[ServerLife],
    snapshots: list[SnapshotLife],
    prices: PriceList,
    *,
    month_of: datetime,
    until: datetime,
) -> Breakdown:
    """The bill of `month_of`'s calendar month, for usage up to `until`.

    With `until` = now this is month-to-date; with `until` = the month's end and live servers
    assumed to live on, it is the projection (`project_month`).
    """
    start, end = month_start(month_of), min(next_month_start(month_of), until)
    total_hours = hours_in_month(month_of)
    servers_amount = ipv4_amount = traffic_amount = snapshot_amount = 0.0
    unpriced: list[str] = []
    for s in servers:
        lo, hi = _overlap(s.created, s.deleted, start, end)
        hours = billed_hours(lo, hi)
        if hours == 0:
            continue
        price = prices.server(s.server_type, s.location)
        if price is None:
            unpriced.append(f"{s.server_type}@{s.location}")
            continue
        servers_amount += capped(hours, price)
        ip_price = prices.primary_ipv4.get(s.location)
        if s.ipv4 and ip_price is not None:
            ipv4_amount += capped(hours, ip_price)
        traffic_amount += traffic_overage(s.outgoing_traffic, price)
    for snap in snapshots:
        lo, hi = _overlap(snap.created, snap.deleted, start, end)
        hours = billed_hours(lo, hi)
        snapshot_amount += snap.image_size_gb * prices.image_per_gb_month * hours / total_hours
    return Breakdown(
        servers=servers_amount,
        ipv4=ipv4_amount,
        snapshots=snapshot_amount,
        traffic=traffic_amount,
        unpriced=tuple(sorted(set(unpriced))),
    )


def hourly_rate(
    servers: list[ServerLife], snapshots: list[SnapshotLife], prices: PriceList, *, at: datetime
) -> float:
    """What one more hour costs now: live servers (+ their IPv4) and live snapshots.

    A server already at its monthly cap still shows its hourly price: the rate describes the
    resources, the cap is applied to the month's amount.
    """
    rate = 0.0
    for s in servers:
        if s.deleted is not None or s.created > at:
            continue
        price = prices.server(s.server_type, s.location)
        if price is not None:
            rate += price.hourly
        ip_price = prices.primary_ipv4.get(s.location)
        if s.ipv4 and ip_price is not None:
            rate += ip_price.hourly
    per_gb_hour = prices.image_per_gb_month / hours_in_month(at)
    rate += sum(x.image_size_gb * per_gb_hour for x in snapshots if x.deleted is None)
    return rate


def agent_cost(
    servers: list[ServerLife], snapshots: list[SnapshotLife], prices: PriceList, *, now: datetime
) -> AgentCost:
    """Month-to-date at `now`, and the month projected to its end with what is alive now
    (live servers and snapshots are assumed to live on; traffic is not extrapolated)."""
    return AgentCost(
        currency=prices.currency,
        hourly_rate=hourly_rate(servers, snapshots, prices, at=now),
        month_to_date=month_cost(servers, snapshots, prices, month_of=now, until=now),
        projected_month=month_cost(
            servers, snapshots, prices, month_of=now, until=next_month_start(now)
        ),
    )


def window_cost(
    servers: list[ServerLife],
    snapshots: list[SnapshotLife],
    prices: PriceList,
    *,
    start: datetime,
    until: datetime,
) -> float:
    """Cost of [start, until) summed over the calendar months it touches (each month with its
    own rounding and caps, as Hetzner bills them); used for budget windows that begin on a
    reset day other than the 1st. A month only partly inside the window is counted from
    `start`, which may round an hour more than the invoice splits."""
    total = 0.0
    cursor = start
    while cursor < until:
        month_end = next_month_start(cursor)
        clipped = [
            ServerLife(
                s.id,
                s.server_type,
                s.location,
                max(s.created, cursor),
                s.deleted,
                s.ipv4,
                s.outgoing_traffic if month_end >= until else 0,
            )
            for s in servers
        ]
        snaps = [
            SnapshotLife(x.id, x.image_size_gb, max(x.created, cursor), x.deleted)
            for x in snapshots
        ]
        total += month_cost(clipped, snaps, prices, month_of=cursor, until=until).total
        cursor = month_end
    return total
