"""Property: however Stripe reorders or repeats a realistic sequence of events, the Agent ends in
the state implied by the subscription's last status (real apiserver, hypothesis-shuffled)."""

from __future__ import annotations

import itertools
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aura.bridge.mapping import STATUS_TABLE
from tests.bridge.conftest import (
    Bridge,
    checkout_obj,
    invoice_obj,
    make_event,
    new_id,
    subscription_obj,
)

pytestmark = pytest.mark.integration

# Which statuses a subscription can move to next, as Stripe's lifecycle allows.
NEXT = {
    "active": ["past_due", "paused", "canceled", "active"],
    "trialing": ["active", "past_due", "paused", "canceled"],
    "past_due": ["active", "unpaid", "canceled"],
    "unpaid": ["active", "canceled"],
    "paused": ["active", "canceled"],
}
_names = itertools.count()


@st.composite
def lifecycles(draw: st.DrawFn) -> list[str]:
    """A walk through subscription statuses, starting right after checkout."""
    status = draw(st.sampled_from(["active", "trialing"]))
    walk = [status]
    for _ in range(draw(st.integers(0, 5))):
        if status == "canceled":
            break
        status = draw(st.sampled_from(NEXT[status]))
        walk.append(status)
    return walk


def events_for(walk: list[str], sub: str, cus: str, name: str) -> list[dict[str, Any]]:
    """The events Stripe emits along `walk`, with strictly increasing `created`."""
    clock = itertools.count(int(time.time()) - 1000, 7)
    events = [make_event("checkout.session.completed", checkout_obj(sub, cus, name), next(clock))]
    events.append(
        make_event(
            "customer.subscription.created", subscription_obj(sub, cus, walk[0]), next(clock)
        )
    )
    for status in walk[1:]:
        obj = subscription_obj(sub, cus, status)
        if status == "past_due":
            events.append(make_event("invoice.payment_failed", invoice_obj(sub, cus), next(clock)))
        if status == "active":
            events.append(make_event("invoice.paid", invoice_obj(sub, cus), next(clock)))
        kind = {
            "canceled": "customer.subscription.deleted",
            "paused": "customer.subscription.paused",
        }.get(status, "customer.subscription.updated")
        events.append(make_event(kind, obj, next(clock)))
    return events


def expected_state(status: str) -> str | None:
    state = STATUS_TABLE[status]
    return state.value if state else None


async def deliver(bridge: Bridge, events: list[dict[str, Any]]) -> None:
    for event in events:
        response = await bridge.send(event)
        assert response.status_code == 200, response.text


def final_state(bridge: Bridge, name: str) -> str | None:
    found = [a for a in bridge.agents() if a["metadata"]["name"] == name]
    return str(found[0]["spec"]["desiredState"]) if found else None


def assert_final_state(bridge: Bridge, name: str, last: str) -> None:
    """The Agent ends as the subscription's `last` status implies."""
    got = final_state(bridge, name)
    if last == "canceled":
        assert got in (None, "deleted")  # ended before (or after) the Agent was made
    else:
        assert got == expected_state(last)


PROPERTY_SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@PROPERTY_SETTINGS
@given(walk=lifecycles(), data=st.data())
async def test_shuffled_and_repeated_delivery_converges(
    bridge: Bridge, walk: list[str], data: st.DataObject
) -> None:
    sub, cus, name = new_id("sub"), new_id("cus"), f"shuffle-{next(_names)}"
    events = events_for(walk, sub, cus, name)
    bridge.stripe.put(sub, walk[-1], cus)  # Stripe's truth when the deliveries arrive
    order = data.draw(st.permutations(events))
    repeats = data.draw(st.lists(st.sampled_from(events), max_size=3))
    await deliver(bridge, order + repeats)
    assert_final_state(bridge, name, walk[-1])


@PROPERTY_SETTINGS
@given(walk=lifecycles(), data=st.data())
async def test_without_stripe_the_newest_event_wins(
    bridge: Bridge, walk: list[str], data: st.DataObject
) -> None:
    """Stripe's API is down: only the `created` ordering guard protects the Agent."""
    sub, cus, name = new_id("sub"), new_id("cus"), f"nostripe-{next(_names)}"
    events = events_for(walk, sub, cus, name)
    bridge.stripe.down = True
    order = data.draw(st.permutations(events))
    await deliver(bridge, order)
    assert_final_state(bridge, name, walk[-1])
