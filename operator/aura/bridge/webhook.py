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

`Webhook.deliver(body, signature)` is the whole answer. `WebhookEndpoint`, an ASGI middleware
the app installs inside the request limits, serves the POST with it directly: at hundreds of
events/s, FastAPI's routing, dependency solving and response classes around one call cost a
tenth of the bridge's CPU. `router()` declares the same route to FastAPI, for the OpenAPI
schema and for apps without the middleware; it answers through the same `deliver`.
"""

from __future__ import annotations

import json
import logging
import time

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

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


class Webhook:
    """One delivery in, (HTTP status, JSON answer) out; see the module docstring."""

    def __init__(self, config: BridgeConfig, processor: Processor, metrics: Metrics) -> None:
        self.config = config
        self.processor = processor
        self.metrics = metrics

    async def deliver(self, body: bytes, signature: str | None) -> tuple[int, dict[str, str]]:
        started = time.perf_counter()
        label = "unverified"
        config, metrics = self.config, self.metrics
        try:
            try:
                event = parse_event(
                    body, signature, config.webhook_secrets, config.tolerance, config.livemode
                )
            except InvalidWebhook as exc:
                metrics.events.labels(label, "rejected").inc()
                metrics.rejected.labels(exc.reason).inc()
                log.warning("webhook rejected: %s", exc.reason)
                return 400, {"error": exc.reason}
            label = event.type if event.type in EVENT_ROUTES else "other"
            try:
                outcome = await self.processor.handle(event)
            except BridgeError as exc:
                metrics.events.labels(label, "error").inc()
                log.error("event %s (%s) not recorded: %s", event.id, event.type, exc)
                return 503, {"error": "could not record the event"}
            metrics.events.labels(label, outcome.value).inc()
            answer = {"outcome": outcome.value}
            if outcome is Outcome.DUPLICATE:
                answer["event"] = event.id
            return 200, answer
        finally:
            metrics.latency.observe(time.perf_counter() - started)


def _encode(answer: dict[str, str]) -> bytes:
    """The JSON body, byte for byte what FastAPI's `JSONResponse` sends."""
    return json.dumps(answer, ensure_ascii=False, separators=(",", ":")).encode()


class WebhookEndpoint:
    """ASGI middleware answering `POST WEBHOOK_PATH` with `webhook`; everything else passes.
    Installed inside `limits.RequestLimits`, whose `receive` bounds the body and reports a
    client that went away (`ClientGone`)."""

    def __init__(self, app: ASGIApp, *, webhook: Webhook) -> None:
        self.app = app
        self.webhook = webhook

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != WEBHOOK_PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        chunks = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # nobody to answer; nothing was processed
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        signature = next(
            (v.decode("latin-1") for k, v in scope["headers"] if k == b"stripe-signature"), None
        )
        status, answer = await self.webhook.deliver(b"".join(chunks), signature)
        body = _encode(answer)
        headers = [
            (b"content-length", str(len(body)).encode()),
            (b"content-type", b"application/json"),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def router(webhook: Webhook) -> APIRouter:
    """The webhook route as FastAPI sees it (schema, and apps without `WebhookEndpoint`)."""
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
        body = await request.body()
        status, answer = await webhook.deliver(body, request.headers.get("stripe-signature"))
        return JSONResponse(answer, status_code=status)

    return api
