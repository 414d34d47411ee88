"""Request-level fault injection and per-endpoint request counting, for every simulated API.

`setup()` installs one aiohttp middleware in front of the API modules. It counts each request
under its route template (`"GET /v1/servers/{id}"`) and applies the request-level faults of
`faults.HTTP_KINDS`. `/admin` and `/_gateway` are neither counted nor faulted.

Each API renders injected errors in its own wire format: `register_error_renderer(app, prefix,
fn)` with `fn(status, code, message) -> web.Response`; paths matching no prefix get the Hetzner
envelope. The Tailscale module should register `"/api/v2"`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from aura_sandbox.config import SandboxConfig
from aura_sandbox.faults import Fault
from aura_sandbox.world import World

ErrorRenderer = Callable[[int, str, str], web.StreamResponse]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

WORLD_KEY = web.AppKey("world", World)
ERROR_RENDERERS = web.AppKey("error_renderers", dict[str, ErrorRenderer])

_SERVER_PATH = re.compile(r"^/v1/servers/(\d+)")
_UNCOUNTED = ("/admin", "/_gateway")
_DEFAULT_STATUS = {"http_error": 503, "rate_limit": 429, "locked": 423}
_DEFAULT_CODE = {
    400: "json_error",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    412: "resource_unavailable",
    422: "invalid_input",
    423: "locked",
    429: "rate_limit_exceeded",
    500: "server_error",
    502: "bad_gateway",
    503: "unavailable",
    504: "timeout",
}
_DEFAULT_MESSAGE = {
    "rate_limit_exceeded": "limit of 3600 requests per hour reached",
    "locked": "cannot perform operation because server is locked",
    "unavailable": "service temporarily unavailable",
    "server_error": "internal server error",
    "bad_gateway": "bad gateway",
    "timeout": "request timed out",
    "conflict": "resource has changed during the request, please retry",
}


def hetzner_error(status: int, code: str, message: str, details: Any = None) -> web.Response:
    return web.json_response(
        {"error": {"code": code, "message": message, "details": details}}, status=status
    )


def register_error_renderer(app: web.Application, prefix: str, fn: ErrorRenderer) -> None:
    app[ERROR_RENDERERS][prefix] = fn


def drop_connection(request: web.Request) -> web.HTTPException:
    """Close the socket unanswered, like a dead host; raise the returned exception after."""
    if request.transport is not None:
        request.transport.close()
    return web.HTTPInternalServerError()


async def _server_name(world: World, request: web.Request) -> str | None:
    m = _SERVER_PATH.match(request.path)
    if m:
        server = world.servers.get(int(m.group(1)))
        return server.name if server else None
    if request.method == "POST" and request.path.rstrip("/") == "/v1/servers":
        try:
            body = await request.json()
        except ValueError:
            return None
        name = body.get("name") if isinstance(body, dict) else None
        return name if isinstance(name, str) else None
    return None


def _render(app: web.Application, path: str, fault: Fault) -> web.StreamResponse:
    status = fault.status or _DEFAULT_STATUS.get(fault.kind, 503)
    code = fault.code or _DEFAULT_CODE.get(status, "unknown_error")
    message = fault.message or _DEFAULT_MESSAGE.get(code, f"injected {code}")
    for prefix, fn in app[ERROR_RENDERERS].items():
        if path.startswith(prefix):
            return fn(status, code, message)
    return hetzner_error(status, code, message)


def _middleware(world: World) -> Any:
    @web.middleware
    async def faults_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if path.startswith(_UNCOUNTED):
            return await handler(request)
        resource = request.match_info.route.resource
        template = resource.canonical if resource is not None else "(unmatched)"
        world.request_counts[f"{request.method} {template}"] += 1
        if not world.faults:
            return await handler(request)
        match: dict[str, Any] = {"method": request.method, "path": path}
        if world.faults.wants_server_name():
            match["server_name"] = await _server_name(world, request)
        fault = world.faults.first_http(**match)
        if fault is None:
            return await handler(request)
        if fault.kind == "latency":
            await asyncio.sleep(fault.delay if fault.delay is not None else 1.0)
            return await handler(request)
        if fault.kind == "timeout":
            await asyncio.sleep(fault.delay if fault.delay is not None else 30.0)
            raise drop_connection(request)
        if fault.kind == "response_lost":
            await handler(request)
            raise drop_connection(request)
        response = _render(request.app, path, fault)
        if fault.kind == "rate_limit":
            response.headers["RateLimit-Remaining"] = "0"
        return response

    return faults_middleware


def setup(app: web.Application, world: World, config: SandboxConfig) -> None:
    app[WORLD_KEY] = world
    app[ERROR_RENDERERS] = {}
    app.middlewares.append(_middleware(world))
