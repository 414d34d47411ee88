"""Webhook deliveries of the sandbox's Stripe events: signing, one attempt, the retry schedule.

Each event is POSTed to the configured URL with `Stripe-Signature: t=<now>,v1=<HMAC-SHA256(secret,
"t.body")>`; every attempt is signed afresh. A non-2xx answer or a network error is retried with
Stripe-like backoff (`RETRY_DELAYS`, realistic seconds that the caller's scheduler scales by
`--time-scale`), at most `len(RETRY_DELAYS) + 1` attempts.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

RETRY_DELAYS = (60.0, 300.0, 1800.0, 3600.0, 3 * 3600.0)
"""Seconds before attempts 2..6 (Stripe's sandbox mode retries over a few hours)."""

Sender = Callable[[str, bytes, dict[str, str]], Awaitable[int]]


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    """The `Stripe-Signature` header Stripe would send."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


@dataclass
class Delivery:
    """The delivery record of one event (what `GET /admin/stripe/deliveries` shows)."""

    event_id: str
    attempts: int = 0
    last_status: int | None = None
    done: bool = False

    async def attempt(
        self, event: dict[str, Any], url: str, secret: str, send: Sender, now: int
    ) -> float | None:
        """POST `event` once; the delay before the next attempt, or None when there is none
        (delivered, or out of attempts)."""
        self.attempts += 1
        payload = json.dumps(event).encode()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            "Stripe-Signature": sign(payload, secret, now),
        }
        try:
            status = await send(url, payload, headers)
        except Exception as exc:  # any network failure counts as a failed attempt
            log.info("webhook %s attempt %d failed: %s", self.event_id, self.attempts, exc)
            status = 0
        self.last_status = status
        if 200 <= status < 300:
            self.done = True
            return None
        if self.attempts <= len(RETRY_DELAYS):
            return RETRY_DELAYS[self.attempts - 1]
        return None
