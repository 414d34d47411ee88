"""The sandbox's Stripe rules without HTTP: lifecycles, final states, events, persistence,
signatures that the official library accepts, and Stripe's form encoding."""

from __future__ import annotations

import json
import time

import pytest
import stripe

from aura_sandbox.stripe import decode_form
from aura_sandbox.stripe_state import StripeError, StripeState
from aura_sandbox.stripe_webhooks import sign


def subscribed(state: StripeState) -> tuple[str, str]:
    customer = state.create_customer({"email": "x@example.com"})["id"]
    price = state.create_price({"unit_amount": "900", "currency": "eur"})["id"]
    session = state.create_session(
        {"mode": "subscription", "customer": customer, "line_items": [{"price": price}]},
        "http://sandbox",
    )
    done = state.complete_checkout(session["id"])
    return done["subscription"], customer


def types(state: StripeState) -> list[str]:
    return [e["type"] for e in state.events.values()]


def test_lifecycle_emits_events_with_snapshots() -> None:
    state = StripeState()
    sub, _ = subscribed(state)
    assert state.subscription(sub)["status"] == "active"
    assert "checkout.session.completed" in types(state)
    invoice = state.fail_payment(sub)
    assert state.subscription(sub)["status"] == "past_due"
    last = list(state.events.values())[-1]
    assert last["type"] == "customer.subscription.updated"
    assert last["data"]["object"]["status"] == "past_due"
    assert last["data"]["previous_attributes"] == {"status": "active"}
    assert last["livemode"] is False
    assert last["id"].startswith("evt_")
    state.pay_invoice(invoice["id"])
    assert state.subscription(sub)["status"] == "active"
    with pytest.raises(StripeError, match="already paid"):
        state.pay_invoice(invoice["id"])
    state.fail_payment(sub, "unpaid")
    assert state.subscription(sub)["status"] == "unpaid"
    state.cancel_subscription(sub)
    assert types(state)[-1] == "customer.subscription.deleted"
    with pytest.raises(StripeError) as final:
        state.pause_subscription(sub)
    assert final.value.status == 400


def test_persistence_round_trip() -> None:
    state = StripeState()
    sub, customer = subscribed(state)
    restored = StripeState()
    restored.load_dict(json.loads(json.dumps(state.to_dict())))
    assert restored.subscription(sub)["customer"] == customer
    assert restored.events.keys() == state.events.keys()


def test_missing_objects_are_404_in_stripes_envelope() -> None:
    with pytest.raises(StripeError) as missing:
        StripeState().subscription("sub_nope")
    assert missing.value.status == 404
    assert missing.value.body()["error"]["code"] == "resource_missing"


def test_signature_is_accepted_by_the_official_library() -> None:
    payload = json.dumps({"id": "evt_1", "object": "event"}).encode()
    header = sign(payload, "whsec_sandbox_secret", int(time.time()))
    assert stripe.WebhookSignature.verify_header(payload, header, "whsec_sandbox_secret", 300)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(payload, header, "whsec_other_secret", 300)


def test_form_decoding() -> None:
    text = "mode=subscription&line_items[0][price]=p1&line_items[1][price]=p2&metadata[a]=b"
    assert decode_form(text) == {
        "mode": "subscription",
        "line_items": [{"price": "p1"}, {"price": "p2"}],
        "metadata": {"a": "b"},
    }


def test_checkout_session_carries_subscription_data_and_expiry() -> None:
    state = StripeState()
    customer = state.create_customer({"email": "meta@example.com"})["id"]
    price = state.create_price({"unit_amount": "900", "currency": "eur"})["id"]
    session = state.create_session(
        {
            "mode": "subscription",
            "customer": customer,
            "line_items": [{"price": price, "quantity": "2"}],
            "subscription_data": {"metadata": {"agent_name": "meta"}, "trial_period_days": "7"},
            "cancel_url": "https://example.com/back",
        },
        "http://sandbox",
    )
    assert session["cancel_url"] == "https://example.com/back"
    assert session["expires_at"] == session["created"] + 86400
    assert session["amount_total"] == 1800
    done = state.complete_checkout(session["id"])
    sub = state.subscription(done["subscription"])
    assert sub["metadata"] == {"agent_name": "meta"}
    assert sub["status"] == "trialing"
    assert done["customer_details"]["email"] == "meta@example.com"
    invoice = state.invoices[sub["latest_invoice"]]
    assert invoice["parent"]["subscription_details"]["metadata"] == {"agent_name": "meta"}
    assert invoice["lines"]["data"][0]["amount"] == 1800


def test_expired_checkout_session_cannot_complete() -> None:
    state = StripeState()
    price = state.create_price({"unit_amount": "900"})["id"]
    session = state.create_session(
        {"mode": "subscription", "line_items": [{"price": price}], "expires_at": "1"}, "http://x"
    )
    with pytest.raises(StripeError, match="no longer open"):
        state.complete_checkout(session["id"])
    assert state.sessions[session["id"]]["status"] == "expired"
    assert types(state)[-1] == "checkout.session.expired"


def test_list_subscriptions_filters_like_stripe() -> None:
    state = StripeState()
    first, customer = subscribed(state)
    second, _ = subscribed(state)
    other, other_customer = subscribed(state)
    state.cancel_subscription(second)

    def ids(**params: str) -> list[str]:
        return [s["id"] for s in state.list_subscriptions(params)["data"]]

    assert ids(customer=customer) == [first]  # canceled ones only with a status filter
    assert set(ids()) == {first, other}
    assert ids(status="canceled") == [second]
    assert ids(customer=other_customer, status="all") == [other]
    page = state.list_subscriptions({"status": "all", "limit": "2"})
    assert page["has_more"] is True and len(page["data"]) == 2
    rest = ids(status="all", starting_after=page["data"][-1]["id"])
    assert len(rest) == 1 and rest[0] not in {s["id"] for s in page["data"]}
    with pytest.raises(StripeError) as bad:
        state.list_subscriptions({"status": "sleeping"})
    assert bad.value.param == "status"
    with pytest.raises(StripeError) as unknown:
        state.list_subscriptions({"starting_after": "sub_nope"})
    assert unknown.value.status == 404
