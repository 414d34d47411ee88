"""Pure mapping from Stripe events and subscription statuses to Agent desired states.

The two tables below are the contract documented in README.md ("Stripe mapping"):

- `EVENT_ROUTES`: which event types matter, where their subscription is, and which status
  the event implies on its own (used only when the subscription cannot be re-read).
- `STATUS_TABLE`: subscription status -> desired state. The applied state is always derived
  from a status, never from an event type, so redelivered or reordered events converge.

`decide()` adds the time-dependent rules, the dunning timeline: a subscription in `DUNNING`
(`past_due`, `unpaid`) suspends its Agent once the past-due grace is over (at once for
`unpaid`), and hibernates it once the hibernation deadline has passed (`dunning`). Nothing
here does I/O or reads a clock; callers pass `now`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from aura.models import DesiredState

AGENT_NAME_PATTERN = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
"""A DNS label: the name also becomes the server's and the tailnet device's hostname."""


class Source(StrEnum):
    """Where an event's object sits relative to the subscription."""

    CHECKOUT = "checkout"
    SUBSCRIPTION = "subscription"
    INVOICE = "invoice"


@dataclass(frozen=True)
class EventRoute:
    source: Source
    implied_status: str | None
    """Status the event implies by itself; None: read `status` from the event's object."""
    description: str


EVENT_ROUTES: dict[str, EventRoute] = {
    "checkout.session.completed": EventRoute(Source.CHECKOUT, "active", "checkout completed"),
    "customer.subscription.created": EventRoute(Source.SUBSCRIPTION, None, "subscription created"),
    "customer.subscription.updated": EventRoute(Source.SUBSCRIPTION, None, "subscription updated"),
    "customer.subscription.paused": EventRoute(
        Source.SUBSCRIPTION, "paused", "subscription paused"
    ),
    "customer.subscription.resumed": EventRoute(
        Source.SUBSCRIPTION, "active", "subscription resumed"
    ),
    "customer.subscription.deleted": EventRoute(
        Source.SUBSCRIPTION, "canceled", "subscription canceled"
    ),
    "invoice.paid": EventRoute(Source.INVOICE, "active", "invoice paid"),
    "invoice.payment_succeeded": EventRoute(Source.INVOICE, "active", "invoice paid"),
    "invoice.payment_failed": EventRoute(Source.INVOICE, "past_due", "invoice payment failed"),
}

DUNNING = frozenset({"past_due", "unpaid"})
"""Statuses in which Stripe still tries to collect: the dunning timeline runs."""

STATUS_TABLE: dict[str, DesiredState | None] = {
    "active": DesiredState.RUNNING,
    "trialing": DesiredState.RUNNING,
    "past_due": DesiredState.SUSPENDED,  # after the grace period, see decide()
    "unpaid": DesiredState.SUSPENDED,
    "paused": DesiredState.STOPPED,
    "canceled": DesiredState.DELETED,
    "incomplete_expired": DesiredState.DELETED,
    # The first payment is pending (at most 23 h): it ends as active or incomplete_expired.
    "incomplete": None,
}


@dataclass(frozen=True)
class Decision:
    """What to write: `state` None leaves desiredState alone."""

    state: DesiredState | None
    reason: str
    past_due_since: float | None
    """When the subscription entered dunning (the timeline's origin); None clears it."""
    hibernate_at: float | None = None
    """When the Agent is to be hibernated (None: never, or not in dunning)."""


def decide(
    status: str,
    *,
    reason: str,
    past_due_since: float | None,
    now: float,
    grace: float,
    hibernate_after: float = 0.0,
    hibernate_at: float | None = None,
) -> Decision:
    """The desired state for a subscription in `status` at time `now`.

    In dunning the timeline starts at `past_due_since` (or `now`): `suspended` after `grace`
    (`past_due` only), then `hibernated` at `hibernate_at` if one was recorded, else
    `hibernate_after` seconds after the suspension (0: never)."""
    if status not in DUNNING:
        return Decision(STATUS_TABLE.get(status), reason, None)
    since = past_due_since if past_due_since is not None else now
    suspend_at = since + (grace if status == "past_due" else 0.0)
    deadline = hibernate_at
    if deadline is None and hibernate_after > 0:
        deadline = suspend_at + hibernate_after
    if deadline is not None and now >= deadline:
        return Decision(
            DesiredState.HIBERNATED, f"{reason}; unpaid past the dunning grace", since, deadline
        )
    if now >= suspend_at:
        return Decision(DesiredState.SUSPENDED, reason, since, deadline)
    return Decision(None, f"{reason}; grace period until {suspend_at:.0f}", since, deadline)


def reason_text(route: EventRoute, status: str, object_id: str, from_event: bool) -> str:
    """`spec.desiredStateReason`: the event's words when they explain the state, else the
    status that was read back from Stripe. At most 256 characters (the CRD limit)."""
    if from_event or route.implied_status == status:
        text = f"{route.description} ({object_id})"
    else:
        text = f"subscription {status.replace('_', ' ')} ({route.description}, {object_id})"
    return text[:256]


def _id(value: Any) -> str | None:
    """A Stripe reference is an id string or, when expanded, an object with `id`."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, dict) and isinstance(value.get("id"), str):
        return str(value["id"])
    return None


def subscription_id(route: EventRoute, obj: dict[str, Any]) -> str | None:
    """The subscription an event is about, or None (e.g. a one-off invoice)."""
    if route.source is Source.SUBSCRIPTION:
        return _id(obj.get("id"))
    if route.source is Source.CHECKOUT:
        return _id(obj.get("subscription"))
    parent = obj.get("parent") or {}
    details = parent.get("subscription_details") or {} if isinstance(parent, dict) else {}
    # API >= 2025-03-31.basil moved it under parent; older event payloads have it on top.
    return (
        _id(details.get("subscription"))
        if isinstance(details, dict) and details.get("subscription")
        else _id(obj.get("subscription"))
    )


def event_status(route: EventRoute, obj: dict[str, Any]) -> str | None:
    """The subscription status the event's own object implies."""
    if route.implied_status is not None:
        return route.implied_status
    status = obj.get("status")
    return status if isinstance(status, str) else None


def price_ids(obj: dict[str, Any]) -> list[str]:
    """Price ids of a subscription (`items`) or an expanded checkout session (`line_items`)."""
    found: list[str] = []
    for key in ("items", "line_items"):
        listing = obj.get(key)
        data = listing.get("data") if isinstance(listing, dict) else None
        for item in data if isinstance(data, list) else []:
            price = item.get("price") if isinstance(item, dict) else None
            if price_id := _id(price):
                found.append(price_id)
    return found


def customer_id(obj: dict[str, Any]) -> str | None:
    return _id(obj.get("customer"))


def valid_name(value: Any) -> bool:
    """Whether `value` can name an Agent or its namespace."""
    return isinstance(value, str) and bool(AGENT_NAME_PATTERN.match(value))
