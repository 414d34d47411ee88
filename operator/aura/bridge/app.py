"""`create_app()`: the bridge's FastAPI application, wired from explicit dependencies.

The caller owns the Kubernetes `ApiClient` and the `StripeApi`; the app's lifespan owns the
Agent watch (SSE) and the dunning sweep (at start, then periodically).
Every request first passes `limits.RequestLimits` (body size, webhook concurrency); webhook
deliveries are then answered by `webhook.WebhookEndpoint` without FastAPI's routing.
Routes: the webhook (`webhook`), the status API (`status_api`), the fleet API and token
minting (`fleet_api`), the status pages under `/ui/` (`ui`), `/healthz` (the process is
up), `/readyz` (the Agent watch is synced with the apiserver), `/metrics`, `/openapi.json`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse
from kubernetes_asyncio import client
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from aura import __version__
from aura.bridge import access, fleet_api, status_api, ui, webhook
from aura.bridge.agents import AgentStore
from aura.bridge.config import BridgeConfig
from aura.bridge.limits import RequestLimits
from aura.bridge.metrics import Metrics
from aura.bridge.processor import Processor
from aura.bridge.sse import AgentWatcher
from aura.bridge.stripe_api import StripeApi

log = logging.getLogger(__name__)


async def _sweep_forever(processor: Processor, interval: float, swept: asyncio.Event) -> None:
    """The dunning sweep at start (deadlines that passed while no bridge ran), then every
    `interval` seconds; `swept` is set once the first sweep has ended."""
    while True:
        try:
            await processor.sweep_grace()
        except Exception as exc:  # a failed sweep is retried on the next tick
            log.warning("dunning sweep failed: %s", type(exc).__name__)
        swept.set()
        await asyncio.sleep(interval)


def create_app(
    config: BridgeConfig,
    api: client.ApiClient,
    stripe_api: StripeApi | None,
    store: AgentStore | None = None,
) -> FastAPI:
    """The bridge app; `store` may be passed in to install test hooks."""
    store = store or AgentStore(api)
    metrics = Metrics()
    processor = Processor(config, store, stripe_api, metrics=metrics)
    watcher = AgentWatcher(store)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tasks = [
            asyncio.create_task(watcher.run(), name="agent-watch"),
            # Always: per-plan metadata can set a hibernation grace even if the flags do not.
            asyncio.create_task(
                _sweep_forever(processor, config.grace_sweep_interval, app.state.swept),
                name="dunning-sweep",
            ),
        ]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    app = FastAPI(
        title="Aura bridge",
        version=__version__,
        summary="Stripe webhooks to Agent desired states, and agent status for dashboards.",
        lifespan=lifespan,
    )
    app.state.processor = processor
    app.state.swept = asyncio.Event()
    app.state.watcher = watcher
    app.state.metrics = metrics
    hook = webhook.Webhook(config, processor, metrics)
    # Innermost: the limits (and the scope guard, outside them) still see every delivery.
    app.add_middleware(webhook.WebhookEndpoint, webhook=hook)
    app.add_middleware(
        RequestLimits,
        limits=config.limits,
        webhook_path=webhook.WEBHOOK_PATH,
        refused=metrics.refuse,
    )
    app.include_router(webhook.router(hook))
    app.include_router(status_api.router(config, store, watcher, metrics))
    app.include_router(fleet_api.router(config, store, api))
    ui.install(app)
    app.add_middleware(access.ScopeGuard, keys=config.token_keys)

    @app.get("/healthz", tags=["ops"], summary="Liveness")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["ops"],
        summary="Readiness: the Agent watch is synced",
        responses={503: {"description": "Not ready"}},
    )
    async def readyz() -> JSONResponse:
        if watcher.synced.is_set():
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "waiting for the agent watch"}, status_code=503)

    @app.get(
        "/metrics", tags=["ops"], summary="Prometheus metrics", response_class=PlainTextResponse
    )
    async def metrics_endpoint() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
