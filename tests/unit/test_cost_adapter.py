"""The Hetzner adapter's price and snapshot calls against the sandbox (official client inside):
one `GET /pricing` per refresh for the whole fleet, in the shape the cost model reads."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import httpx

from aura.controller.clients.hetzner import HcloudAdapter
from aura.controller.clients.ratelimit import RateLimiter
from aura.cost.prices import PriceCache
from aura_sandbox.harness import Sandbox


def test_one_pricing_call_per_refresh_whatever_the_fleet() -> None:
    with Sandbox(time_scale=0.01) as sb:
        admin = httpx.Client(base_url=sb.ready.admin_url.removesuffix("/admin"))
        assert admin.put("/admin/pricing", json={"image_per_gb_month": 0.02}).status_code == 200
        admin.delete("/admin/requests")
        adapter = HcloudAdapter(
            token=sb.ready.hetzner_token,
            endpoint=sb.ready.hetzner_url,
            limiter=RateLimiter(max_backoff=1),
            token_source="test",
        )
        cache = PriceCache(adapter, monotonic=time.monotonic, wall=lambda: datetime.now(UTC))

        async def fleet_refresh() -> None:
            for _ in range(200):  # every Agent of a 200-Agent fleet reads the price list
                prices = await cache.get()
                assert prices is not None
                assert prices.image_per_gb_month == 0.02
                cx22 = prices.server("cx22", "fsn1")
                assert cx22 is not None and cx22.monthly == 3.79 and cx22.hourly == 0.006
                assert prices.primary_ipv4["fsn1"].monthly == 0.5
            assert await adapter.list_images("aura.dev/managed-by=aura-operator") == []

        asyncio.run(fleet_refresh())
        adapter.close()
        counts = admin.get("/admin/requests").json()["requests"]
        pricing_calls = {k: v for k, v in counts.items() if "pricing" in k}
        print(f"Hetzner calls per price refresh: {pricing_calls}")
        assert pricing_calls == {"GET /v1/pricing": 1}
        assert cache.refreshes == 1
