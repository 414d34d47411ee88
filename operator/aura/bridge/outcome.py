"""`Outcome`: what became of one verified event; the webhook answers 200 with it, and it is
the `outcome` label of `aura_bridge_webhook_events_total`."""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    CREATED = "created"
    APPLIED = "applied"
    UNCHANGED = "unchanged"
    DUPLICATE = "duplicate"
    STALE = "stale"
    IGNORED = "ignored"
    UNKNOWN_SUBSCRIPTION = "unknown_subscription"
    INVALID = "invalid"
    FINAL = "final"
