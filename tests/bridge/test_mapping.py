"""The pure mapping tables: every status and event row, the grace period, id extraction."""

from __future__ import annotations

import pytest

from aura.bridge import mapping
from aura.models import DesiredState

R, S, X, D = (
    DesiredState.RUNNING,
    DesiredState.SUSPENDED,
    DesiredState.STOPPED,
    DesiredState.DELETED,
)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("active", R),
        ("trialing", R),
        ("past_due", S),
        ("unpaid", S),
        ("paused", X),
        ("canceled", D),
        ("incomplete_expired", D),
        ("incomplete", None),
        ("something_new", None),
    ],
)
def test_status_table(status: str, expected: DesiredState | None) -> None:
    decision = mapping.decide(status, reason="r", past_due_since=None, now=100.0, grace=0)
    assert decision.state == expected


@pytest.mark.parametrize(
    ("event_type", "obj", "expected"),
    [
        ("invoice.paid", {}, "active"),
        ("invoice.payment_succeeded", {}, "active"),
        ("invoice.payment_failed", {}, "past_due"),
        ("customer.subscription.deleted", {"status": "canceled"}, "canceled"),
        ("customer.subscription.paused", {"status": "paused"}, "paused"),
        ("customer.subscription.resumed", {"status": "active"}, "active"),
        ("customer.subscription.updated", {"status": "unpaid"}, "unpaid"),
        ("customer.subscription.created", {"status": "trialing"}, "trialing"),
        ("checkout.session.completed", {}, "active"),
    ],
)
def test_event_routes(event_type: str, obj: dict[str, str], expected: str) -> None:
    assert mapping.event_status(mapping.EVENT_ROUTES[event_type], obj) == expected


def test_irrelevant_types_have_no_route() -> None:
    assert "invoice.created" not in mapping.EVENT_ROUTES
    assert "charge.succeeded" not in mapping.EVENT_ROUTES


def test_past_due_grace_period() -> None:
    inside = mapping.decide("past_due", reason="r", past_due_since=None, now=1000.0, grace=60)
    assert inside.state is None
    assert inside.past_due_since == 1000.0
    later = mapping.decide("past_due", reason="r", past_due_since=1000.0, now=1061.0, grace=60)
    assert later.state is S
    assert later.past_due_since == 1000.0
    recovered = mapping.decide("active", reason="r", past_due_since=1000.0, now=1061.0, grace=60)
    assert recovered.state is R
    assert recovered.past_due_since is None


def test_subscription_id_from_each_source() -> None:
    routes = mapping.EVENT_ROUTES
    invoice_new = {"parent": {"subscription_details": {"subscription": "sub_new"}}}
    assert mapping.subscription_id(routes["invoice.paid"], invoice_new) == "sub_new"
    assert mapping.subscription_id(routes["invoice.paid"], {"subscription": "sub_old"}) == "sub_old"
    assert mapping.subscription_id(routes["invoice.paid"], {"id": "in_1"}) is None
    checkout = {"subscription": {"id": "sub_x", "object": "subscription"}}
    assert mapping.subscription_id(routes["checkout.session.completed"], checkout) == "sub_x"
    assert mapping.subscription_id(routes["customer.subscription.updated"], {"id": "sub_y"}) == (
        "sub_y"
    )


def test_price_ids_and_names() -> None:
    sub = {"items": {"data": [{"price": {"id": "price_a"}}, {"price": "price_b"}]}}
    assert mapping.price_ids(sub) == ["price_a", "price_b"]
    assert mapping.valid_name("my-agent-1")
    for bad in ("", "My_Agent", "-x", "a" * 64, None, 3):
        assert not mapping.valid_name(bad)


def test_reason_text_uses_event_words_only_when_they_explain_the_state() -> None:
    route = mapping.EVENT_ROUTES["invoice.payment_failed"]
    assert mapping.reason_text(route, "past_due", "in_1", True) == "invoice payment failed (in_1)"
    assert mapping.reason_text(route, "active", "in_1", False) == (
        "subscription active (invoice payment failed, in_1)"
    )
