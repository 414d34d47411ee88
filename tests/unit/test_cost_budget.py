"""Budget windows, thresholds and the BlockNew decision; the history ledger; revenue; prices.

Prices as in test_cost_model: CX22 fsn1 at 0.006/h capped at 3.79, no IPv4 here.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from aura.controller import errors
from aura.controller.clients.hetzner_api import ServerInfo
from aura.cost import budget, hibernation, ledger
from aura.cost.budget_models import AgentBudgetSpec, AgentBudgetStatus
from aura.cost.model import PriceList, ServerLife, ServerPrice
from aura.cost.prices import PriceCache, parse_pricing
from aura.cost.wire import CostServer, SubscriptionPrice
from tests.fakes.hetzner import FakeHetzner

PRICES = PriceList(
    currency="EUR",
    as_of=datetime(2026, 12, 1, tzinfo=UTC),
    servers={("cx22", "fsn1"): ServerPrice(hourly=0.006, monthly=3.79)},
)


def at(day: int, hour: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, tzinfo=UTC)


def spec(limit: float, *thresholds: dict[str, Any], reset_day: int = 1) -> AgentBudgetSpec:
    return AgentBudgetSpec.model_validate(
        {"limit": limit, "resetDay": reset_day, "thresholds": list(thresholds)}
    )


def agent(created: datetime) -> budget.AgentFacts:
    return budget.AgentFacts("a", [ServerLife(1, "cx22", "fsn1", created, ipv4=False)], [])


def test_window_starts_on_the_reset_day() -> None:
    assert budget.window_start(at(20), 15) == at(15)
    assert budget.window_start(at(3), 15) == datetime(2026, 11, 15, tzinfo=UTC)
    assert budget.window_start(at(3), 1) == at(1)
    assert budget.window_end(datetime(2026, 11, 15, tzinfo=UTC)) == at(15)


def test_thresholds_fire_once_when_they_turn_active() -> None:
    # Spend at 11 Dec 00:00: 240 h x 0.006 = 1.44. Limit 2.00: 50% = 1.00 active, 100% not.
    # Projection: the whole month capped = 3.79 -> the projected 100% threshold is active.
    s = spec(
        2.0,
        {"percent": 50, "action": "Notify"},
        {"percent": 100, "action": "BlockNew"},
        {"percent": 100, "action": "Notify", "projected": True},
    )
    first = budget.evaluate(
        s, AgentBudgetStatus(), [agent(at(1))], PRICES, now=at(11), generation=1
    )
    assert first.status.current_spend == pytest.approx(1.44)
    assert first.status.projected == pytest.approx(3.79)
    assert [t.active for t in first.status.thresholds] == [True, False, True]
    assert first.status.blocking is False
    assert len(first.fired) == 2
    again = budget.evaluate(s, first.status, [agent(at(1))], PRICES, now=at(11, 1), generation=1)
    assert again.fired == []  # still active: no second Event
    assert again.status.thresholds[0].last_fired == at(11)


def test_block_new_follows_the_current_limit() -> None:
    s = spec(1.0, {"percent": 100, "action": "BlockNew"})
    evaluated = budget.evaluate(
        s, AgentBudgetStatus(), [agent(at(1))], PRICES, now=at(11), generation=1
    )
    assert evaluated.status.blocking
    assert "BlockNew threshold" in (budget.blocks_new(s, evaluated.status) or "")
    raised = spec(10.0, {"percent": 100, "action": "BlockNew"})
    assert budget.blocks_new(raised, evaluated.status) is None  # before any re-evaluation
    assert budget.blocks_new(s, AgentBudgetStatus()) == "its spend has not been computed yet"


def member(
    name: str, desired: str, created: int, rate: float, gone: int | None = None, **kw: Any
) -> budget.AgentFacts:
    deleted = at(gone) if gone is not None else None
    life = ServerLife(created, "cx22", "fsn1", at(created), deleted, ipv4=False)
    return budget.AgentFacts(
        name, [life], [], desired=desired, created=at(created).isoformat(), hourly_rate=rate, **kw
    )


def hibernate_after(limit: float, *agents: budget.AgentFacts, **threshold: Any) -> Any:
    s = spec(limit, {"percent": 100, "action": "Hibernate", **threshold})
    evaluated = budget.evaluate(
        s, AgentBudgetStatus(), list(agents), PRICES, now=at(11), generation=1
    )
    return s, evaluated.status


def test_hibernate_holds_stopped_and_suspended_agents_but_not_running_ones_by_default() -> None:
    fleet = [
        member("on", "running", 1, 0.006),
        member("off", "stopped", 1, 0.006),
        member("unpaid", "suspended", 2, 0.006),
        member("asleep", "stopped", 1, 0.0001, sleeping=True),  # hibernated already
    ]
    s, status = hibernate_after(1.0, *fleet)  # spend 3 x ~1.4 >= 1.00
    assert "stopped and suspended Agents hibernate" in (status.thresholds[0].message or "")
    holds = hibernation.decide("b", s, status, fleet, now=at(11))
    assert holds.hold == {"off": 0.006, "unpaid": 0.006} and holds.release == []


def test_include_running_takes_running_agents_in_the_budgets_order() -> None:
    fleet = [member("old", "running", 1, 0.006), member("new", "running", 3, 0.008)]
    for order, first in (("NewestFirst", "new"), ("OldestFirst", "old"), ("CostliestFirst", "new")):
        s, status = hibernate_after(3.0, *fleet, includeRunning=True, projected=True, order=order)
        # Projection 3.79 + 3.79 (capped months) = 7.58 >= 3.00; hibernating one saves its
        # rate x 504 h to the month's end (3.02 or 4.03): not enough alone, so both go, first
        # the one the order names.
        holds = hibernation.decide("b", s, status, fleet, now=at(11))
        assert next(iter(holds.hold)) == first and len(holds.hold) == 2, order
    s, status = hibernate_after(7.0, *fleet, includeRunning=True, projected=True)
    assert list(hibernation.decide("b", s, status, fleet, now=at(11)).hold) == ["new"]


def test_held_agents_stay_held_until_waking_them_would_stay_under_the_threshold() -> None:
    held = {"held_by": "b", "held_rate": 0.006, "sleeping": True}
    fleet = [member("asleep", "running", 1, 0.0001, gone=10, **held)]
    # Its server lived 9 days (1.30 spent, nothing live): under 2.00 asleep, but awake again
    # to the month's end (+0.006 x 504 h = 3.02) it would cross the threshold again.
    s, status = hibernate_after(2.0, *fleet, includeRunning=True, projected=True)
    assert status.projected is not None and status.projected < 2.0
    holds = hibernation.decide("b", s, status, fleet, now=at(11))
    assert holds.hold == {} and holds.release == []
    forgetful = [member("asleep", "running", 1, 0.0001, gone=10, held_by="b", sleeping=True)]
    assert hibernation.decide("b", s, status, forgetful, now=at(11)).release == ["asleep"]
    # A raised limit releases it; another budget's hold is not this one's to release.
    s, status = hibernate_after(100.0, *fleet, includeRunning=True, projected=True)
    assert hibernation.decide("b", s, status, fleet, now=at(11)).release == ["asleep"]
    assert hibernation.decide("other", s, status, fleet, now=at(11)).release == []


def test_budget_spec_rejects_bad_input_naming_the_field() -> None:
    with pytest.raises(ValueError, match=r"reset_?[dD]ay"):
        spec(1.0, {"percent": 50, "action": "Notify"}, reset_day=31)
    with pytest.raises(ValueError, match="action"):
        spec(1.0, {"percent": 50, "action": "Delete"})


def test_ledger_adds_live_servers_and_closes_vanished_ones() -> None:
    old = [CostServer(id=1, type="cx22", location="fsn1", created=at(1))]
    live = [
        ServerInfo(
            2, "s", "running", ipv4=None, location="fsn1", server_type="cx22",
            created=at(2), outgoing_traffic=5,
        )
    ]  # fmt: skip
    merged = ledger.merge_servers(old, live, now=at(3))
    assert [(s.id, s.deleted) for s in merged] == [(1, at(3)), (2, None)]
    assert merged[1].ipv4 is False and merged[1].outgoing_traffic == 5
    # Servers deleted before last month (here: 3 Dec, seen on 10 Feb) are forgotten: no bill
    # needs them. Server 2 vanishes now, so it is closed now and kept.
    later = ledger.merge_servers(merged, [], now=datetime(2027, 2, 10, tzinfo=UTC))
    assert [(s.id, s.deleted) for s in later] == [(2, datetime(2027, 2, 10, tzinfo=UTC))]


def test_revenue_per_month_and_margin() -> None:
    monthly = SubscriptionPrice(unit_amount=2900, currency="EUR", interval="month")  # type: ignore[arg-type]
    yearly = SubscriptionPrice(unit_amount=24000, currency="EUR", interval="year")  # type: ignore[arg-type]
    assert ledger.revenue_per_month(monthly) == pytest.approx(29.0)
    assert ledger.revenue_per_month(yearly) == pytest.approx(20.0)  # 240.00 / 12
    history = [CostServer(id=1, type="cx22", location="fsn1", created=at(1))]
    result = ledger.compute(history, [], PRICES, monthly, now=at(11))
    # Projection 3.79 (capped month): margin 29.00 - 3.79 = 25.21.
    assert result.status.margin == pytest.approx(25.21)
    usd = SubscriptionPrice(unit_amount=2900, currency="USD", interval="month")  # type: ignore[arg-type]
    assert ledger.compute(history, [], PRICES, usd, now=at(11)).status.margin is None


SANDBOX_LIKE = {
    "currency": "EUR",
    "vat_rate": "19.00",
    "image": {"price_per_gb_month": {"net": "0.0110000000", "gross": "0.0130900000"}},
    "server_types": [
        {
            "id": 1,
            "name": "cx22",
            "prices": [
                {
                    "location": "fsn1",
                    "price_hourly": {"net": "0.0060000000", "gross": "0.0071400000"},
                    "price_monthly": {"net": "3.7900000000", "gross": "4.5101000000"},
                    "included_traffic": 21990232555520,
                    "price_per_tb_traffic": {"net": "1.0000000000", "gross": "1.1900000000"},
                }
            ],
        }
    ],
    "primary_ips": [
        {
            "type": "ipv4",
            "prices": [
                {
                    "location": "fsn1",
                    "price_hourly": {"net": "0.0008", "gross": "0.00095"},
                    "price_monthly": {"net": "0.5", "gross": "0.595"},
                }
            ],
        }
    ],
}


def test_parse_pricing_reads_net_prices() -> None:
    prices = parse_pricing(SANDBOX_LIKE, as_of=at(1))
    cx22 = prices.server("cx22", "fsn1")
    assert cx22 is not None and cx22.monthly == 3.79 and cx22.included_traffic == 20 * 1024**4
    assert prices.primary_ipv4["fsn1"].monthly == 0.5
    assert prices.image_per_gb_month == 0.011
    with pytest.raises(ValueError, match="GET /pricing"):
        parse_pricing({"server_types": []}, as_of=at(1))


def test_price_cache_fetches_once_per_max_age_and_keeps_the_last_list() -> None:
    fake = FakeHetzner()
    fake.pricing = SANDBOX_LIKE
    clock = [0.0]
    cache = PriceCache(
        fake, max_age=86400, retry_after=60, monotonic=lambda: clock[0], wall=lambda: at(1)
    )

    async def run() -> None:
        for _ in range(50):  # fifty Agents asking in one refresh
            assert await cache.get() is not None
        assert fake.calls["get_pricing"] == 1
        clock[0] = 86401
        fake.fail_next["get_pricing"] = [errors.Retryable("boom")]
        assert await cache.get() is not None  # stale beats nothing
        assert fake.calls["get_pricing"] == 2
        assert await cache.get() is not None
        assert fake.calls["get_pricing"] == 2  # backing off
        clock[0] = 86401 + 61
        await cache.get()
        assert fake.calls["get_pricing"] == 3 and cache.refreshes == 2

    asyncio.run(run())
