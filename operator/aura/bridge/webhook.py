"""`POST /v1/stripe/webhook`: verify, dedup, apply, answer.

Answers:
- 200 `{"outcome": ...}` whenever the event is recorded or deliberately not acted on
  (duplicate, stale, ignored type, unknown subscription, invalid agent name, final record);
- 400 `{"error": <short reason>}` for a missing/bad/expired signature, a body that is not a
  well-formed event, or the wrong `livemode`; nothing is changed;
- 503 when the Kubernetes write could not be made within the deadline, so Stripe retries.
Only known event types are used as metric labels (see `metrics`). Rejections are counted by
reason in `aura_bridge_webhook_rejected_total`; this module's log lines are rate-limited (one
per message per 10 s, with the count of the others), so forged traffic cannot flood the logs.
Body size and concurrency are bounded before this handler runs (`limits`).
"""

from __future__ import annotations

import logging
import time

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from aura.bridge.config import BridgeConfig
from aura.bridge.errors import BridgeError
from aura.bridge.limits import LogRateLimit
from aura.bridge.mapping import EVENT_ROUTES
from aura.bridge.metrics import Metrics
from aura.bridge.processor import Outcome, Processor
from aura.bridge.signature import InvalidWebhook, parse_event

log = logging.getLogger(__name__)
log.addFilter(LogRateLimit(interval=10.0))
WEBHOOK_PATH = "/v1/stripe/webhook"


def router(config: BridgeConfig, processor: Processor, metrics: Metrics) -> APIRouter:
    """The webhook route bound to one processor."""
    api = APIRouter()

    @api.post(
        WEBHOOK_PATH,
        tags=["stripe"],
        summary="Receive a Stripe webhook event",
        responses={
            200: {"description": "Recorded, or deliberately not acted on"},
            400: {"description": "Bad signature or malformed event; nothing changed"},
            503: {"description": "Could not be recorded now; Stripe will retry"},
        },
    )
    async def stripe_webhook(request: Request) -> JSONResponse:
        started = time.perf_counter()
        label = "unverified"
        try:
            body = await request.body()
            try:
                event = parse_event(
                    body,
                    request.headers.get("stripe-signature"),
                    config.webhook_secrets,
                    config.tolerance,
                    config.livemode,
                )
            except InvalidWebhook as exc:
                metrics.events.labels(label, "rejected").inc()
                metrics.rejected.labels(exc.reason).inc()
                log.warning("webhook rejected: %s", exc.reason)
                return JSONResponse({"error": exc.reason}, status_code=400)
            label = event.type if event.type in EVENT_ROUTES else "other"
            try:
                outcome = await processor.handle(event)
            except BridgeError as exc:
                metrics.events.labels(label, "error").inc()
                log.error("event %s (%s) not recorded: %s", event.id, event.type, exc)
                return JSONResponse({"error": "could not record the event"}, status_code=503)
            metrics.events.labels(label, outcome.value).inc()
            status = {"outcome": outcome.value}
            if outcome is Outcome.DUPLICATE:
                status["event"] = event.id
            return JSONResponse(status)
        finally:
            metrics.latency.observe(time.perf_counter() - started)

    return api
