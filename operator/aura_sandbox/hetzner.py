"""The simulated Hetzner Cloud API under `/v1`.

Why hand-written: no existing library or fake simulates the Hetzner API faithfully. The
public fakes (hetzner.md section 4) miss label selectors, snapshots, rate-limit headers or
locking, use wrong status codes, or are scripted per test; the OpenAPI spec describes shapes,
not behaviour (asynchronous actions, locks, power states). This module reproduces the wire
behaviour the official clients rely on, checked by the conformance tests that drive it with
the real `hcloud` client and validate every response against the spec.

Routes live in `hetzner_actions`, `hetzner_servers`, `hetzner_images`, `hetzner_resources`,
`hetzner_firewalls` and `hetzner_pricing`; this module adds the cross-cutting
rules, in the real API's order:

1. an unknown route is `404 not_found` "api route not found" before any token check;
2. `Authorization: Bearer <token>`: missing or wrong is `401 unauthorized`; the read-only
   token may only GET (`401 token_readonly`);
3. the per-project token bucket (`ratelimit.TokenBucket`): `429 rate_limit_exceeded` and
   `RateLimit-Limit/-Remaining/-Reset` on every answer;
4. the handler; `ApiError` becomes the `{"error": {"code", "message", "details"}}` envelope.

Every answer carries `X-Correlation-Id`.
"""

from __future__ import annotations

import secrets
from typing import Any

from aiohttp import web

from aura_sandbox import (
    hetzner_actions,
    hetzner_firewalls,
    hetzner_images,
    hetzner_pricing,
    hetzner_resources,
    hetzner_servers,
)
from aura_sandbox.config import SandboxConfig
from aura_sandbox.hetzner_api import ApiError
from aura_sandbox.http_faults import Handler, hetzner_error, register_error_renderer
from aura_sandbox.ratelimit import TokenBucket
from aura_sandbox.world import World

PREFIX = "/v1"
BUCKET_KEY = web.AppKey("hetzner_bucket", TokenBucket)


def _middleware(world: World, config: SandboxConfig, bucket: TokenBucket) -> Any:
    good = f"Bearer {config.hetzner_token}"
    readonly = f"Bearer {config.hetzner_readonly_token}"

    @web.middleware
    async def hetzner_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith(PREFIX + "/") and request.path != PREFIX:
            return await handler(request)
        response = await _answer(request, handler)
        response.headers["X-Correlation-Id"] = secrets.token_hex(8)
        response.headers["Access-Control-Expose-Headers"] = "Link,X-Correlation-ID"
        return response

    async def _answer(request: web.Request, handler: Handler) -> web.StreamResponse:
        http_exception = request.match_info.http_exception
        if http_exception is not None:
            if http_exception.status == 405:
                return hetzner_error(405, "method_not_allowed", "method not allowed")
            return hetzner_error(404, "not_found", "api route not found")
        auth = request.headers.get("Authorization")
        if not auth:
            return hetzner_error(401, "unauthorized", "token is required")
        if auth == readonly:
            if request.method not in ("GET", "HEAD"):
                return hetzner_error(401, "token_readonly", "token is read-only")
        elif auth != good:
            return hetzner_error(401, "unauthorized", "the token you have provided is invalid")
        if not bucket.take():
            response: web.StreamResponse = hetzner_error(
                429,
                "rate_limit_exceeded",
                f"limit of {bucket.capacity} requests per hour reached",
            )
        else:
            try:
                response = await handler(request)
            except ApiError as exc:
                response = hetzner_error(exc.status, exc.code, exc.message, exc.details)
            if request.method != "GET":
                world.mark_dirty()
        response.headers.update(bucket.headers())
        return response

    return hetzner_middleware


def setup(app: web.Application, world: World, config: SandboxConfig) -> None:
    """Add the `/v1` routes, the auth/rate-limit middleware and the ready-line keys."""
    bucket = TokenBucket(config.rate_limit_capacity, config.rate_limit_refill_per_second)
    app[BUCKET_KEY] = bucket
    app.middlewares.append(_middleware(world, config, bucket))

    def injected_error(status: int, code: str, message: str) -> web.StreamResponse:
        # Injected faults answer before the middleware above, so add its headers here.
        response = hetzner_error(status, code, message)
        response.headers["X-Correlation-Id"] = secrets.token_hex(8)
        response.headers.update(bucket.headers())
        return response

    register_error_renderer(app, PREFIX, injected_error)
    hetzner_actions.setup_routes(app)
    hetzner_servers.setup_routes(app)
    hetzner_images.setup_routes(app)
    hetzner_resources.setup_routes(app)
    hetzner_pricing.setup_routes(app)
    hetzner_firewalls.setup_routes(app)
    world.ready_info["hetzner_url"] = f"{world.base_url}{PREFIX}"
    world.ready_info["hetzner_token"] = config.hetzner_token
