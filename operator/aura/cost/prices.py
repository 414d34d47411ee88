"""Hetzner's price list: parsed from `GET /pricing`, cached for the whole fleet, refreshed daily.

One `PriceCache` per operator process. Every Agent's cost reads the same cached `PriceList`,
so a refresh is exactly one Hetzner call (`GET /pricing`, which carries the per-location
prices of every server type, the primary IPs and the image storage price) whatever the size
of the fleet. A failed refresh keeps the previous list (prices change rarely; stale prices
beat no figures) and is retried at the next use after `retry_after`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from aura.controller import errors
from aura.cost.model import PriceList, ServerPrice

log = logging.getLogger("aura.cost")

DAY = 86400.0


class PricingSource(Protocol):
    async def get_pricing(self) -> dict[str, Any]:
        """The `pricing` object of `GET /pricing`; raises only `errors.*`."""
        ...


def _net(money: Any) -> float:
    if isinstance(money, dict):
        return float(money.get("net", 0))
    return float(money or 0)


def parse_pricing(pricing: dict[str, Any], *, as_of: datetime) -> PriceList:
    """A `PriceList` (net prices) from the `pricing` object of `GET /pricing`.

    Raises `ValueError` naming the field when the shape is not Hetzner's.
    """
    try:
        currency = str(pricing["currency"])
        servers: dict[tuple[str, str], ServerPrice] = {}
        for st in pricing.get("server_types", []):
            for p in st["prices"]:
                servers[(st["name"], p["location"])] = ServerPrice(
                    hourly=_net(p["price_hourly"]),
                    monthly=_net(p["price_monthly"]),
                    included_traffic=int(p.get("included_traffic") or 0),
                    per_tb_traffic=_net(p.get("price_per_tb_traffic")),
                )
        ipv4: dict[str, ServerPrice] = {}
        for ip in pricing.get("primary_ips", []):
            if ip.get("type") != "ipv4":
                continue
            for p in ip["prices"]:
                ipv4[p["location"]] = ServerPrice(
                    hourly=_net(p["price_hourly"]), monthly=_net(p["price_monthly"])
                )
        image = _net(pricing.get("image", {}).get("price_per_gb_month"))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"GET /pricing: unexpected shape ({type(exc).__name__}: {exc})") from None
    return PriceList(
        currency=currency,
        as_of=as_of,
        servers=servers,
        primary_ipv4=ipv4,
        image_per_gb_month=image,
    )


class PriceCache:
    """The fleet's one price list; see the module docstring."""

    def __init__(
        self,
        source: PricingSource,
        *,
        max_age: float = DAY,
        retry_after: float = 300.0,
        monotonic: Callable[[], float],
        wall: Callable[[], datetime],
    ) -> None:
        self._source = source
        self._max_age = max_age
        self._retry_after = retry_after
        self._monotonic = monotonic
        self._wall = wall
        self._prices: PriceList | None = None
        self._fetched_at: float | None = None
        self._failed_at: float | None = None
        self._lock = asyncio.Lock()
        self.refreshes = 0
        """Successful fetches so far (one Hetzner call each)."""

    def invalidate(self) -> None:
        """Fetch again at the next `get` (e.g. a test changed the sandbox's prices)."""
        self._fetched_at = None
        self._failed_at = None

    async def get(self) -> PriceList | None:
        """The cached list, refreshed when older than `max_age`; None before any success."""
        async with self._lock:
            now = self._monotonic()
            fresh = self._fetched_at is not None and now - self._fetched_at < self._max_age
            backing_off = self._failed_at is not None and now - self._failed_at < self._retry_after
            if fresh or (backing_off and self._prices is not None):
                return self._prices
            if backing_off:
                return None
            try:
                raw = await self._source.get_pricing()
                self._prices = parse_pricing(raw, as_of=self._wall())
            except (errors.AuraError, ValueError) as exc:
                self._failed_at = now
                log.warning("price refresh failed, keeping the previous list: %s", exc)
                return self._prices
            self._fetched_at, self._failed_at = now, None
            self.refreshes += 1
            return self._prices
