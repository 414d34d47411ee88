"""Every mapping row, dedup, re-read and ordering, against the real apiserver."""

from __future__ import annotations

from typing import Any

import pytest

from aura.bridge.agents import (
    ANNOTATION_AS_OF,
    ANNOTATION_EVENT_CREATED,
    ANNOTATION_EVENT_ID,
    LABEL_CUSTOMER,
    LABEL_SUBSCRIPTION,
)
from tests.bridge.conftest import (
    Bridge,
    checkout,
    checkout_obj,
    invoice_obj,
    make_event,
    new_id,
    subscription_obj,
)
from tests.kube import Cluster

pytestmark = pytest.mark.integration


def state(bridge: Bridge, name: str) -> str:
    return str(bridge.agent(name)["spec"]["desiredState"])


async def sub_event(
    bridge: Bridge, sub: str, cus: str, status: str, type_: str = "customer.subscription.updated"
) -> dict[str, Any]:
    """Stripe's view changes to `status`, then the matching event is delivered."""
    bridge.stripe.put(sub, status, cus)
    response = await bridge.send(make_event(type_, subscription_obj(sub, cus, status)))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_checkout_creates_a_running_agent_with_billing_labels_and_plan(
    bridge: Bridge,
) -> None:
    sub, cus, response = await checkout(bridge, "alpha", price="price_big")
    assert response.status_code == 200
    assert response.json() == {"outcome": "created"}
    agent = bridge.agent("alpha")
    assert agent["spec"]["desiredState"] == "running"
    assert agent["spec"]["billing"] == {"customerId": cus, "subscriptionId": sub}
    assert agent["metadata"]["labels"][LABEL_CUSTOMER] == cus
    assert agent["metadata"]["labels"][LABEL_SUBSCRIPTION] == sub
    assert agent["spec"]["server"]["type"] == "cpx31"  # from the price -> plan map
    annotations = agent["metadata"]["annotations"]
    assert annotations[ANNOTATION_EVENT_ID] == bridge.posted[-1]["id"]
    assert annotations[ANNOTATION_EVENT_CREATED] == str(bridge.posted[-1]["created"])


async def test_default_plan_and_agent_namespace(bridge: Bridge, cluster: Cluster) -> None:
    other = f"{bridge.namespace}-b"
    cluster.kubectl("create", "namespace", other)
    sub, cus = new_id("sub"), new_id("cus")
    bridge.stripe.put(sub, "trialing", cus, "price_unknown")
    event = make_event("checkout.session.completed", checkout_obj(sub, cus, "beta", other))
    assert (await bridge.send(event)).json() == {"outcome": "created"}
    agent = bridge.agent("beta", other)
    assert agent["spec"]["server"]["type"] == "cx22"
    assert agent["spec"]["desiredState"] == "running"


async def test_second_delivery_and_second_checkout_create_nothing_new(bridge: Bridge) -> None:
    sub, cus, _ = await checkout(bridge, "gamma")
    first = bridge.posted[-1]
    again = await bridge.send(first)
    assert again.json()["outcome"] == "duplicate"
    # A *separate* event for the same checkout (Stripe sometimes sends two).
    twin = make_event("checkout.session.completed", checkout_obj(sub, cus, "gamma"))
    assert (await bridge.send(twin)).status_code == 200
    assert [a["metadata"]["name"] for a in bridge.agents()] == ["gamma"]


@pytest.mark.parametrize("name", [None, "Not_Valid", "x" * 70])
async def test_checkout_without_a_valid_name_creates_nothing(
    bridge: Bridge, name: str | None
) -> None:
    sub, cus = new_id("sub"), new_id("cus")
    bridge.stripe.put(sub, "active", cus)
    response = await bridge.send(
        make_event("checkout.session.completed", checkout_obj(sub, cus, name))
    )
    assert response.status_code == 200
    assert response.json() == {"outcome": "invalid"}
    assert bridge.agents() == []


async def test_checkout_in_payment_mode_is_ignored(bridge: Bridge) -> None:
    obj = checkout_obj(new_id("sub"), new_id("cus"), "delta") | {"mode": "payment"}
    response = await bridge.send(make_event("checkout.session.completed", obj))
    assert response.json() == {"outcome": "ignored"}
    assert bridge.agents() == []


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("past_due", "suspended"),
        ("unpaid", "suspended"),
        ("paused", "stopped"),
        ("canceled", "deleted"),
        ("incomplete_expired", "deleted"),
        ("active", "running"),
        ("trialing", "running"),
    ],
)
async def test_subscription_status_rows(bridge: Bridge, status: str, expected: str) -> None:
    sub, cus, _ = await checkout(bridge, "row")
    if expected == "running":  # prove it *resumes*: suspend first
        await sub_event(bridge, sub, cus, "unpaid")
        assert state(bridge, "row") == "suspended"
    body = await sub_event(bridge, sub, cus, status)
    assert body["outcome"] == "applied"
    assert state(bridge, "row") == expected
    assert bridge.agent("row")["spec"]["desiredStateReason"]


async def test_invoice_events(bridge: Bridge) -> None:
    sub, cus, _ = await checkout(bridge, "inv")
    bridge.stripe.put(sub, "past_due", cus)
    failed = make_event("invoice.payment_failed", invoice_obj(sub, cus))
    assert (await bridge.send(failed)).json() == {"outcome": "applied"}
    agent = bridge.agent("inv")
    assert agent["spec"]["desiredState"] == "suspended"
    invoice_id = failed["data"]["object"]["id"]
    assert agent["spec"]["desiredStateReason"] == f"invoice payment failed ({invoice_id})"
    bridge.stripe.put(sub, "active", cus)
    paid = make_event("invoice.paid", invoice_obj(sub, cus))
    assert (await bridge.send(paid)).json() == {"outcome": "applied"}
    assert state(bridge, "inv") == "running"


async def test_subscription_deleted_event_and_final_record(bridge: Bridge) -> None:
    sub, cus, _ = await checkout(bridge, "gone")
    await sub_event(bridge, sub, cus, "canceled", "customer.subscription.deleted")
    assert state(bridge, "gone") == "deleted"
    # Anything later is final: logged and answered 200, never 5xx, never revived.
    body = await sub_event(bridge, sub, cus, "active")
    assert body["outcome"] == "final"
    assert state(bridge, "gone") == "deleted"


async def test_unknown_subscription_and_irrelevant_types(bridge: Bridge) -> None:
    sub, cus = new_id("sub"), new_id("cus")
    body = await sub_event(bridge, sub, cus, "active")
    assert body == {"outcome": "unknown_subscription"}
    other = await bridge.send(make_event("charge.succeeded", {"id": "ch_1", "object": "charge"}))
    assert other.json() == {"outcome": "ignored"}
    one_off = await bridge.send(make_event("invoice.paid", {"id": "in_1", "customer": cus}))
    assert one_off.json() == {"outcome": "ignored"}
    assert bridge.agents() == []


async def test_reread_beats_the_event_payload(bridge: Bridge) -> None:
    sub, cus, _ = await checkout(bridge, "fresh")
    # A stale "past_due" snapshot arrives, but Stripe says the subscription is active now.
    bridge.stripe.put(sub, "active", cus)
    stale = make_event("customer.subscription.updated", subscription_obj(sub, cus, "past_due"))
    assert (await bridge.send(stale)).status_code == 200
    assert state(bridge, "fresh") == "running"


async def test_without_stripe_older_events_never_override_newer(bridge: Bridge) -> None:
    sub, cus, _ = await checkout(bridge, "order")
    bridge.stripe.down = True  # fall back to the events' own objects
    now = int(bridge.posted[-1]["created"]) + 10
    newer = make_event("customer.subscription.updated", subscription_obj(sub, cus, "unpaid"), now)
    older = make_event(
        "customer.subscription.updated", subscription_obj(sub, cus, "active"), now - 5
    )
    assert (await bridge.send(newer)).json() == {"outcome": "applied"}
    assert (await bridge.send(older)).json() == {"outcome": "stale"}
    agent = bridge.agent("order")
    assert agent["spec"]["desiredState"] == "suspended"
    assert agent["metadata"]["annotations"][ANNOTATION_EVENT_ID] == newer["id"]
    assert float(agent["metadata"]["annotations"][ANNOTATION_AS_OF]) == now


async def test_past_due_grace_period_then_sweep(make_bridge: Any) -> None:
    bridge: Bridge = await make_bridge(past_due_grace=3600)
    sub, cus, _ = await checkout(bridge, "grace")
    body = await sub_event(bridge, sub, cus, "past_due")
    assert body["outcome"] == "unchanged"
    assert state(bridge, "grace") == "running"
    processor = bridge.app.state.processor
    assert await processor.sweep_grace() == 0
    await bridge.app.state.swept.wait()  # the start-up sweep is over: ours is the only one
    real_clock = processor.clock
    processor.clock = lambda: real_clock() + 3601
    # The sweep is cluster-wide: other tests' Agents in dunning may be written too.
    assert await processor.sweep_grace() >= 1
    assert state(bridge, "grace") == "suspended"


async def test_metrics_count_outcomes(bridge: Bridge) -> None:
    await checkout(bridge, "metered")
    text = (await bridge.http.get("/metrics")).text
    assert (
        'aura_bridge_webhook_events_total{outcome="created",type="checkout.session.completed"} 1.0'
        in text
    )
    assert "aura_bridge_webhook_duration_seconds_bucket" in text


async def test_confirming_reread_writes_nothing_but_still_guards_order(bridge: Bridge) -> None:
    sub, cus, _ = await checkout(bridge, "steady")
    before = bridge.agent("steady")["metadata"]["resourceVersion"]
    processor = bridge.app.state.processor
    real_clock = processor.clock
    processor.clock = lambda: real_clock() + 100  # the confirmation is 100 s after checkout
    renewal = make_event("invoice.paid", invoice_obj(sub, cus))
    assert (await bridge.send(renewal)).json() == {"outcome": "unchanged"}
    assert bridge.agent("steady")["metadata"]["resourceVersion"] == before
    # Stripe goes down; a delayed snapshot from before that confirmation must not win.
    bridge.stripe.down = True
    old = make_event(
        "customer.subscription.updated",
        subscription_obj(sub, cus, "unpaid"),
        int(real_clock()) + 50,  # newer than the checkout, older than the confirmation
    )
    assert (await bridge.send(old)).json() == {"outcome": "stale"}
    assert state(bridge, "steady") == "running"
