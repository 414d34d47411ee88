"""The admin API under `/admin` (JSON, no auth: the sandbox only listens on loopback).

- `GET /admin/world`: summary (counts per kind, servers per status, faults, requests).
- `GET /admin/servers`, `GET /admin/servers/{id}`: servers with `configured`, `cloud_init`
  (`pending`, `running`, `done`), `gateway_url` and `user_data`.
- `/admin/servers/{id}/configure`, `/disk`, `/disk/{path}`, `/traffic`, `/health` and
  `/gateway/restart`: inside one server, see `admin_servers` (the operator's simulated
  configurator calls `configure`).
- `GET/PUT/DELETE /admin/pricing`: the price table, see `pricing`.
- `GET /admin/requests`, `DELETE /admin/requests`: counts per `"METHOD /route/{template}"`.
- `POST /admin/faults`, `GET /admin/faults`, `DELETE /admin/faults`: see `faults`.
- `POST /admin/rate_limit` with `{"capacity": N, "refill_per_second": R}`: refills the bucket.

Errors are `{"error": "message"}` with a 4xx status. Other modules add their own sections to
`GET /admin/world` with `add_summary(app, name, fn)`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from aura_sandbox import admin_servers, hetzner_pricing
from aura_sandbox.admin_servers import server_view as server_view
from aura_sandbox.config import SandboxConfig
from aura_sandbox.faults import FaultError
from aura_sandbox.hetzner import BUCKET_KEY
from aura_sandbox.http_faults import WORLD_KEY
from aura_sandbox.model import SimServer
from aura_sandbox.world import World

Summary = Callable[[], Any]
SUMMARIES = web.AppKey("admin_summaries", dict[str, Summary])


def add_summary(app: web.Application, name: str, fn: Summary) -> None:
    """Add `fn()`'s result to `GET /admin/world` under `name`; callable before or after
    this module's `setup()`."""
    if SUMMARIES not in app:
        app[SUMMARIES] = {}
    app[SUMMARIES][name] = fn


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _server(request: web.Request) -> SimServer | None:
    world = request.app[WORLD_KEY]
    try:
        return world.servers.get(int(request.match_info["id"]))
    except ValueError:
        return None


async def world_summary(request: web.Request) -> web.Response:
    world = request.app[WORLD_KEY]
    h = world.hetzner
    by_status: dict[str, int] = {}
    for server in h.servers.values():
        by_status[server.status] = by_status.get(server.status, 0) + 1
    summary: dict[str, Any] = {
        "time_scale": world.time_scale,
        "servers": len(h.servers),
        "servers_by_status": by_status,
        "actions": len(h.actions),
        "actions_running": sum(1 for a in h.actions.values() if a.status == "running"),
        "images": len(h.images),
        "ssh_keys": len(h.ssh_keys),
        "firewalls": len(h.firewalls),
        "faults": world.faults.list(),
        "requests": sum(world.request_counts.values()),
        "rate_limit_remaining": request.app[BUCKET_KEY].remaining,
        "rate_limited": request.app[BUCKET_KEY].refused,
    }
    for name, fn in request.app[SUMMARIES].items():
        summary[name] = fn()
    return web.json_response(summary)


async def list_servers(request: web.Request) -> web.Response:
    world = request.app[WORLD_KEY]
    return web.json_response({"servers": [server_view(world, s) for s in world.servers.values()]})


async def get_server(request: web.Request) -> web.Response:
    server = _server(request)
    if server is None:
        return _error(404, "server not found")
    return web.json_response(server_view(request.app[WORLD_KEY], server))


async def requests_counts(request: web.Request) -> web.Response:
    counts = request.app[WORLD_KEY].request_counts
    return web.json_response({"requests": dict(sorted(counts.items()))})


async def reset_requests(request: web.Request) -> web.Response:
    request.app[WORLD_KEY].request_counts.clear()
    return web.Response(status=204)


async def add_fault(request: web.Request) -> web.Response:
    try:
        body = await request.json()
    except ValueError:
        return _error(400, "body must be JSON")
    if not isinstance(body, dict) or "kind" not in body:
        return _error(422, "body must be an object with a kind")
    spec = dict(body)
    kind = spec.pop("kind")
    try:
        fault = request.app[WORLD_KEY].faults.add(kind, **spec)
    except (FaultError, TypeError, ValueError) as exc:
        return _error(422, str(exc))
    return web.json_response(fault.to_dict(), status=201)


async def list_faults(request: web.Request) -> web.Response:
    return web.json_response({"faults": request.app[WORLD_KEY].faults.list()})


async def clear_faults(request: web.Request) -> web.Response:
    request.app[WORLD_KEY].faults.clear()
    return web.Response(status=204)


async def rate_limit(request: web.Request) -> web.Response:
    body = await request.json()
    bucket = request.app[BUCKET_KEY]
    bucket.reconfigure(body.get("capacity"), body.get("refill_per_second"))
    return web.json_response({"capacity": bucket.capacity, "refill_per_second": bucket.refill})


def setup(app: web.Application, world: World, config: SandboxConfig) -> None:
    if SUMMARIES not in app:
        app[SUMMARIES] = {}
    r = app.router
    r.add_get("/admin/world", world_summary)
    r.add_get("/admin/servers", list_servers)
    r.add_get("/admin/servers/{id}", get_server)
    r.add_get("/admin/requests", requests_counts)
    r.add_delete("/admin/requests", reset_requests)
    r.add_post("/admin/faults", add_fault)
    r.add_get("/admin/faults", list_faults)
    r.add_delete("/admin/faults", clear_faults)
    r.add_post("/admin/rate_limit", rate_limit)
    admin_servers.setup_routes(app)
    hetzner_pricing.setup_admin_routes(app)
    world.ready_info["admin_url"] = f"{world.base_url}/admin"
