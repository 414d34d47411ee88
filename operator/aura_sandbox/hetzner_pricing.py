"""Routes for prices: `GET /v1/pricing` and `GET/PUT/DELETE /admin/pricing` (see `pricing`)."""

from __future__ import annotations

from aiohttp import web

from aura_sandbox.fast_json import json_response
from aura_sandbox.http_faults import WORLD_KEY


async def get_pricing(request: web.Request) -> web.Response:
    return json_response({"pricing": request.app[WORLD_KEY].hetzner.pricing.render()})


async def admin_get(request: web.Request) -> web.Response:
    return web.json_response(request.app[WORLD_KEY].hetzner.pricing.to_dict())


async def admin_put(request: web.Request) -> web.Response:
    world = request.app[WORLD_KEY]
    try:
        body = await request.json()
    except ValueError:
        return web.json_response({"error": "body must be JSON"}, status=400)
    if not isinstance(body, dict):
        return web.json_response({"error": "body must be an object"}, status=422)
    try:
        world.hetzner.pricing.update(body)
    except ValueError as exc:
        return web.json_response({"error": str(exc)}, status=422)
    world.mark_dirty()
    return web.json_response(world.hetzner.pricing.to_dict())


async def admin_reset(request: web.Request) -> web.Response:
    world = request.app[WORLD_KEY]
    world.hetzner.pricing.load_dict({})
    world.mark_dirty()
    return web.json_response(world.hetzner.pricing.to_dict())


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/v1/pricing", get_pricing)


def setup_admin_routes(app: web.Application) -> None:
    app.router.add_get("/admin/pricing", admin_get)
    app.router.add_put("/admin/pricing", admin_put)
    app.router.add_delete("/admin/pricing", admin_reset)
