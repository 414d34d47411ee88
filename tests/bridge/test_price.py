"""`spec.billing.price` from a Stripe subscription: read from its first item, recorded once."""

from __future__ import annotations

from aura.bridge.price import price_change, subscription_price

SUB = {
    "items": {
        "data": [
            {
                "quantity": 2,
                "price": {
                    "unit_amount": 2900,
                    "currency": "eur",
                    "recurring": {"interval": "year", "interval_count": 1},
                },
            }
        ]
    }
}


def test_subscription_price_reads_the_first_item() -> None:
    assert subscription_price(SUB) == {
        "unitAmount": 2900,
        "currency": "EUR",
        "interval": "year",
        "intervalCount": 1,
        "quantity": 2,
    }


def test_unreadable_prices_record_nothing() -> None:
    assert subscription_price({}) is None
    assert subscription_price({"items": {"data": [{"price": {"unit_amount": None}}]}}) is None
    odd = {"items": {"data": [{"price": {"unit_amount": 5, "currency": "eur"}}]}}
    assert subscription_price(odd) is None  # one-off price: no interval, no monthly revenue


def test_price_change_only_when_it_differs() -> None:
    change = price_change({"spec": {}}, SUB)
    assert change == {"billing": {"price": subscription_price(SUB)}}
    recorded = {"spec": {"billing": change["billing"]}}
    assert price_change(recorded, SUB) == {}
    assert price_change(recorded, None) == {}
