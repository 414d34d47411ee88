"""The sandbox's Stripe rules without HTTP: lifecycles, final states, events, persistence,
signatures that the official library accepts, and Stripe's form encoding."""

from __future__ import annotations

import json
import time

import pytest
import stripe

from aura_sandbox.stripe import decode_form
from aura_sandbox.stripe_state import StripeError, StripeState, sign


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
