"""The subscription price recorded on the Agent (`spec.billing.price`), for revenue and margin.

Read from the subscription's first item (Aura sells one plan per subscription): the price's
`unit_amount` (minor units), `currency`, `recurring.interval`/`interval_count` and the item's
`quantity`. Anything missing or malformed records nothing rather than a wrong figure.
"""

from __future__ import annotations

from typing import Any

_INTERVALS = {"day", "week", "month", "year"}


def subscription_price(subscription: dict[str, Any]) -> dict[str, Any] | None:
    """`spec.billing.price` for this Stripe subscription, or None when it cannot be read."""
    items = subscription.get("items")
    data = items.get("data") if isinstance(items, dict) else None
    if not isinstance(data, list) or not data or not isinstance(data[0], dict):
        return None
    item = data[0]
    price = item.get("price")
    if not isinstance(price, dict):
        return None
    recurring = price.get("recurring") if isinstance(price.get("recurring"), dict) else {}
    amount, currency = price.get("unit_amount"), price.get("currency")
    interval = (recurring or {}).get("interval")
    if not isinstance(amount, int) or amount < 0 or not isinstance(currency, str):
        return None
    if interval not in _INTERVALS or len(currency) != 3:
        return None
    count = (recurring or {}).get("interval_count") or 1
    quantity = item.get("quantity") or 1
    return {
        "unitAmount": amount,
        "currency": currency.upper(),
        "interval": interval,
        "intervalCount": int(count),
        "quantity": int(quantity),
    }


def price_change(agent: dict[str, Any], subscription: dict[str, Any] | None) -> dict[str, Any]:
    """The `spec.billing` patch that records a new price, or {} when it is unchanged/unknown."""
    if not subscription:
        return {}
    price = subscription_price(subscription)
    recorded = ((agent.get("spec") or {}).get("billing") or {}).get("price")
    if price is None or price == recorded:
        return {}
    return {"billing": {"price": price}}
