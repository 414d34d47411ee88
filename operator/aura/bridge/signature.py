"""Verifying a Stripe webhook delivery and parsing it into a minimal, trusted `StripeEvent`.

`parse_event(body, header, secrets, tolerance, livemode)` returns the event or raises
`InvalidWebhook` with a short reason fit for a 400 response. The signature is checked on the
raw bytes with the official library (`stripe.WebhookSignature.verify_header`), once per
configured secret: during a rotation Stripe signs with every active secret and the bridge may
hold old and new. JSON is parsed only after a signature matched. Reasons never echo the
header, the body or a secret.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import stripe


class InvalidWebhook(Exception):
    """The delivery is not a genuine, fresh, well-formed event; `reason` is safe to return."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class StripeEvent:
    """The fields of a Stripe Event the bridge reads."""

    id: str
    type: str
    created: int
    livemode: bool
    object: dict[str, Any]


def verify_signature(
    body: bytes, header: str | None, secrets: tuple[str, ...], tolerance: int
) -> None:
    """Raise `InvalidWebhook` unless `header` signs `body` with one of `secrets` within
    `tolerance` seconds."""
    if not header:
        raise InvalidWebhook("missing Stripe-Signature header")
    if not secrets:
        raise InvalidWebhook("no webhook secret configured")
    try:
        payload = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidWebhook("body is not UTF-8") from None
    expired = False
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(payload, header, secret, tolerance)
        except stripe.SignatureVerificationError as exc:
            # The library checks the HMAC before the timestamp, so this message means the
            # signature matched but is too old: a replay or a badly delayed retry.
            expired = expired or "tolerance" in str(exc)
            continue
        return
    raise InvalidWebhook("timestamp outside tolerance" if expired else "invalid signature")


def parse_event(
    body: bytes, header: str | None, secrets: tuple[str, ...], tolerance: int, livemode: bool
) -> StripeEvent:
    """The verified event in `body`; raises `InvalidWebhook` (see the module docstring)."""
    verify_signature(body, header, secrets, tolerance)
    try:
        data = json.loads(body)
    except ValueError:
        raise InvalidWebhook("malformed JSON") from None
    if not isinstance(data, dict) or data.get("object", "event") != "event":
        raise InvalidWebhook("not a Stripe event")
    event_id, event_type, created = data.get("id"), data.get("type"), data.get("created")
    obj = (data.get("data") or {}).get("object") if isinstance(data.get("data"), dict) else None
    if not (isinstance(event_id, str) and event_id and isinstance(event_type, str)):
        raise InvalidWebhook("event lacks id or type")
    if not isinstance(created, int) or isinstance(created, bool) or not isinstance(obj, dict):
        raise InvalidWebhook("event lacks created or data.object")
    if data.get("livemode") is not livemode:
        raise InvalidWebhook("livemode mismatch")
    return StripeEvent(id=event_id, type=event_type, created=created, livemode=livemode, object=obj)
