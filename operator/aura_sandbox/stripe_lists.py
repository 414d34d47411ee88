"""`GET /v1/subscriptions`: Stripe's list filters and cursor pagination over the sandbox's
subscriptions.

Filters as the API reference documents them: `customer`, `price` (any item with that price),
`status` (one status, `ended` = canceled or incomplete_expired, `all`; without it every status
except `canceled`), `limit` (1-100, default 10) and `starting_after` (an id on the previous page).
Newest first. An unknown `starting_after` id is 404, a bad `status` or `limit` 400.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from aura_sandbox.stripe_errors import StripeError
from aura_sandbox.stripe_objects import listing

Obj = dict[str, Any]
ENDED = frozenset({"canceled", "incomplete_expired"})
STATUSES = frozenset(
    {
        "active",
        "all",
        "canceled",
        "ended",
        "incomplete",
        "incomplete_expired",
        "past_due",
        "paused",
        "trialing",
        "unpaid",
    }
)


def _limit(raw: Any) -> int:
    try:
        limit = int(raw if raw not in (None, "") else 10)
    except (TypeError, ValueError):
        limit = 0
    if not 1 <= limit <= 100:
        raise StripeError(
            400, "limit must be an integer between 1 and 100.", "parameter_invalid_integer", "limit"
        )
    return limit


def _matches(sub: Obj, params: Obj, status: str) -> bool:
    if params.get("customer") and sub["customer"] != params["customer"]:
        return False
    prices = {i["price"]["id"] for i in sub["items"]["data"]}
    if params.get("price") and params["price"] not in prices:
        return False
    if status == "all":
        return True
    if status == "ended":
        return sub["status"] in ENDED
    if status:
        return bool(sub["status"] == status)
    return bool(sub["status"] != "canceled")


def list_subscriptions(
    subscriptions: Iterable[Obj], params: Obj, render: Callable[[Obj], Obj]
) -> Obj:
    """One page of `subscriptions` (oldest first, as created) matching `params`, newest first,
    each passed through `render`."""
    status = str(params.get("status") or "")
    if status and status not in STATUSES:
        allowed = ", ".join(sorted(STATUSES))
        raise StripeError(
            400, f"Invalid status: must be one of {allowed}.", "parameter_invalid", "status"
        )
    limit = _limit(params.get("limit"))
    newest_first = list(subscriptions)[::-1]  # the store keeps creation order
    found = [s for s in newest_first if _matches(s, params, status)]
    after = params.get("starting_after")
    if after:
        position = {s["id"]: n for n, s in enumerate(newest_first)}
        if after not in position:
            raise StripeError(
                404, f"No such subscription: '{after}'", "resource_missing", "starting_after"
            )
        found = [s for s in found if position[s["id"]] > position[after]]
    return listing("/v1/subscriptions", [render(s) for s in found[:limit]], len(found) > limit)
