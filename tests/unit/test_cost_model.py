"""The cost model, one test per billing rule, each with its arithmetic written out.

Prices used throughout (net EUR, Hetzner's list prices for a CX22 in fsn1):
hourly 0.0060, monthly 3.79; 20 TB included, 1.00 per extra TB; primary IPv4 0.0008/h capped
at 0.50/month; snapshots 0.011 per GB-month. December 2026 has 31 x 24 = 744 hours.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aura.cost.model import (
    TB,
    PriceList,
    ServerLife,
    ServerPrice,
    SnapshotLife,
    agent_cost,
    billed_hours,
    month_cost,
    window_cost,
)

CX22 = ServerPrice(hourly=0.006, monthly=3.79, included_traffic=20 * TB, per_tb_traffic=1.0)
IPV4 = ServerPrice(hourly=0.0008, monthly=0.5)
PRICES = PriceList(
    currency="EUR",
    as_of=datetime(2026, 12, 1, tzinfo=UTC),
    servers={("cx22", "fsn1"): CX22},
    primary_ipv4={"fsn1": IPV4},
    image_per_gb_month=0.011,
)
DEC = datetime(2026, 12, 1, tzinfo=UTC)


def at(day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=UTC)


def server(created: datetime, deleted: datetime | None = None, **kw: object) -> ServerLife:
    return ServerLife(1, "cx22", "fsn1", created, deleted, **kw)  # type: ignore[arg-type]


def test_hours_are_rounded_up_so_a_few_minutes_cost_one_hour() -> None:
    assert billed_hours(at(2), at(2, 0, 5)) == 1
    assert billed_hours(at(2), at(2, 1)) == 1
    assert billed_hours(at(2), at(2, 1, 30)) == 2  # 90 min -> 2 h
    assert billed_hours(at(2, 1), at(2)) == 0


def test_a_server_running_90_minutes_costs_two_hours() -> None:
    # 90 min -> 2 h x 0.0060 = 0.0120 (server); 2 h x 0.0008 = 0.0016 (IPv4)
    bill = month_cost([server(at(2, 10), at(2, 11, 30))], [], PRICES, month_of=DEC, until=at(3))
    assert bill.servers == pytest.approx(0.012)
    assert bill.ipv4 == pytest.approx(0.0016)
    assert bill.total == pytest.approx(0.0136)


def test_a_stopped_server_is_billed_like_a_running_one() -> None:
    # Created on the 1st, "stopped" all week, still exists on the 8th at 00:00: 7 x 24 = 168 h.
    # 168 x 0.006 = 1.008 (under the 3.79 cap); IPv4 168 x 0.0008 = 0.1344.
    bill = month_cost([server(at(1))], [], PRICES, month_of=DEC, until=at(8))
    assert bill.servers == pytest.approx(1.008)
    assert bill.ipv4 == pytest.approx(0.1344)


def test_the_month_is_capped_at_the_monthly_price() -> None:
    # Whole December: 744 h x 0.006 = 4.464 > 3.79 -> 3.79; IPv4 744 x 0.0008 = 0.5952 > 0.50.
    bill = month_cost(
        [server(at(1))], [], PRICES, month_of=DEC, until=datetime(2027, 1, 1, tzinfo=UTC)
    )
    assert bill.servers == pytest.approx(3.79)
    assert bill.ipv4 == pytest.approx(0.5)


def test_the_cap_is_per_calendar_month() -> None:
    # Created 20 Nov: December only counts from 1 Dec 00:00. Until 3 Dec 12:00 = 60 h.
    # 60 x 0.006 = 0.36 (November's hours are November's bill).
    created = datetime(2026, 11, 20, tzinfo=UTC)
    bill = month_cost([server(created)], [], PRICES, month_of=DEC, until=at(3, 12))
    assert bill.servers == pytest.approx(0.36)


def test_a_replaced_server_is_a_second_server_with_its_own_rounding() -> None:
    # Old: 10:00-10:20 -> 1 h; new: 10:25-11:00 -> 1 h. One server for 10:00-11:00 would be
    # 1 h; the replacement makes it 2 h: 2 x 0.006 = 0.012.
    old = ServerLife(1, "cx22", "fsn1", at(5, 10), at(5, 10, 20))
    new = ServerLife(2, "cx22", "fsn1", at(5, 10, 25), at(5, 11))
    bill = month_cost([old, new], [], PRICES, month_of=DEC, until=at(6))
    assert bill.servers == pytest.approx(0.012)


def test_no_ipv4_no_ipv4_charge() -> None:
    bill = month_cost([server(at(2), at(2, 3), ipv4=False)], [], PRICES, month_of=DEC, until=at(3))
    assert bill.ipv4 == 0
    assert bill.servers == pytest.approx(3 * 0.006)


def test_snapshot_storage_is_pro_rata() -> None:
    # 40 GB kept 72 h of December's 744: 40 x 0.011 x 72 / 744 = 0.0425806...
    snap = SnapshotLife(9, 40.0, at(10), at(13))
    bill = month_cost([], [snap], PRICES, month_of=DEC, until=at(20))
    assert bill.snapshots == pytest.approx(40 * 0.011 * 72 / 744)
    assert bill.snapshots == pytest.approx(0.04258, abs=1e-5)


def test_only_outgoing_traffic_above_the_included_volume_is_billed() -> None:
    # 22.5 TB out, 20 TB included -> 2.5 TB x 1.00 = 2.50. 19 TB out -> 0.
    over = server(at(2), outgoing_traffic=int(22.5 * TB))
    under = server(at(2), outgoing_traffic=19 * TB)
    assert month_cost([over], [], PRICES, month_of=DEC, until=at(3)).traffic == pytest.approx(2.5)
    assert month_cost([under], [], PRICES, month_of=DEC, until=at(3)).traffic == 0


def test_unpriced_types_are_reported_not_guessed() -> None:
    odd = ServerLife(3, "ccx99", "fsn1", at(2), at(2, 1))
    bill = month_cost([odd], [], PRICES, month_of=DEC, until=at(3))
    assert bill.total == 0
    assert bill.unpriced == ("ccx99@fsn1",)


def test_projection_hourly_rate_and_month_to_date() -> None:
    # Live since 1 Dec 00:00, now 11 Dec 00:00: 240 h -> MTD 1.44 + IPv4 0.192 = 1.632.
    # Projection: the whole month, capped: 3.79 + 0.50 = 4.29. Rate: 0.006 + 0.0008 = 0.0068/h.
    cost = agent_cost([server(at(1))], [], PRICES, now=at(11))
    assert cost.month_to_date.total == pytest.approx(1.632)
    assert cost.projected_month.total == pytest.approx(4.29)
    assert cost.hourly_rate == pytest.approx(0.0068)
    # A deleted server adds nothing to the rate and nothing beyond its deletion.
    gone = agent_cost([server(at(1), at(1, 2))], [], PRICES, now=at(11))
    assert gone.hourly_rate == 0
    assert gone.projected_month.total == pytest.approx(2 * 0.0068)


def test_a_budget_window_from_a_reset_day_spans_two_months() -> None:
    # Window from 15 Nov: November 15..30 = 16 days = 384 h -> 2.304 (under cap); December
    # until the 2nd 00:00 = 24 h -> 0.144. Server lines only (no IPv4), total 2.448.
    created = datetime(2026, 11, 1, tzinfo=UTC)
    total = window_cost(
        [server(created, ipv4=False)],
        [],
        PRICES,
        start=datetime(2026, 11, 15, tzinfo=UTC),
        until=at(2),
    )
    assert total == pytest.approx(2.304 + 0.144)
    assert timedelta(days=16) / timedelta(hours=1) == 384
