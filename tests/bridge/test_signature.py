"""Forged, tampered, expired, wrong-secret and malformed deliveries: 400, and nothing changes."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from aura.bridge.signature import InvalidWebhook, parse_event
from tests.bridge.conftest import (
    OLD_SECRET,
    SECRET,
    Bridge,
    checkout,
    make_event,
    sign,
    subscription_obj,
)

pytestmark = pytest.mark.integration


async def post(bridge: Bridge, body: str | bytes, header: str | None) -> httpx.Response:
    headers = {"Stripe-Signature": header} if header is not None else {}
    return await bridge.http.post("/v1/stripe/webhook", content=body, headers=headers)


async def test_rejections_leave_the_agent_untouched(bridge: Bridge) -> None:
    sub, cus, _ = await checkout(bridge, "guarded")
    before = bridge.agent("guarded")
    event = make_event("customer.subscription.deleted", subscription_obj(sub, cus, "canceled"))
    bridge.stripe.put(sub, "canceled", cus)
    body = json.dumps(event)
    now = int(time.time())
    cases = {
        "missing": (body, None, "missing Stripe-Signature header"),
        "forged": (body, f"t={now},v1={'ab' * 32}", "invalid signature"),
        "tampered": (body.replace("canceled", "active"), sign(body), "invalid signature"),
        "wrong secret": (body, sign(body, "whsec_somebody_else_123456"), "invalid signature"),
        "expired": (body, sign(body, timestamp=now - 301), "timestamp outside tolerance"),
        "garbage header": (body, "nonsense", "invalid signature"),
        "v0 only": (body, f"t={now},v0={'ab' * 32}", "invalid signature"),
    }
    for label, (payload, header, reason) in cases.items():
        response = await post(bridge, payload, header)
        assert response.status_code == 400, label
        assert response.json() == {"error": reason}, label
        assert SECRET not in response.text
    after = bridge.agent("guarded")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert after["spec"]["desiredState"] == "running"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("{not json", "malformed JSON"),
        ("[1, 2]", "not a Stripe event"),
        (json.dumps({"object": "event", "type": "x"}), "event lacks id or type"),
        (
            json.dumps({"id": "evt_1", "type": "x", "data": {}}),
            "event lacks created or data.object",
        ),
    ],
)
async def test_malformed_bodies_are_400(bridge: Bridge, body: str, reason: str) -> None:
    response = await post(bridge, body, sign(body))
    assert response.status_code == 400
    assert response.json() == {"error": reason}


async def test_non_utf8_body(bridge: Bridge) -> None:
    response = await post(bridge, b"\xff\xfe", "t=1,v1=00")
    assert response.status_code == 400


async def test_wrong_livemode_is_400_and_creates_nothing(bridge: Bridge) -> None:
    event = make_event("charge.succeeded", {"id": "ch_1"}) | {"livemode": True}
    body = json.dumps(event)
    response = await post(bridge, body, sign(body))
    assert response.status_code == 400
    assert response.json() == {"error": "livemode mismatch"}


async def test_old_secret_is_accepted_during_rotation(bridge: Bridge) -> None:
    sub, cus, _ = await checkout(bridge, "rotated")
    bridge.stripe.put(sub, "paused", cus)
    event = make_event("customer.subscription.paused", subscription_obj(sub, cus, "paused"))
    response = await bridge.send(event, secret=OLD_SECRET)
    assert response.status_code == 200
    assert bridge.agent("rotated")["spec"]["desiredState"] == "stopped"


def test_two_v1_signatures_in_one_header_verify() -> None:
    body = json.dumps(make_event("charge.succeeded", {"id": "ch_1"}))
    now = int(time.time())
    old = sign(body, OLD_SECRET, now).split(",")[1]
    header = f"{sign(body, 'whsec_new_rolled_secret_9876', now)},{old}"
    event = parse_event(body.encode(), header, (SECRET, OLD_SECRET), 300, False)
    assert event.type == "charge.succeeded"
    with pytest.raises(InvalidWebhook, match="no webhook secret configured"):
        parse_event(body.encode(), header, (), 300, False)
