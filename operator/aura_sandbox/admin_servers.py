"""Admin endpoints that act inside one simulated server (see `host` for the model).

- `POST /admin/servers/{id}/configure` `{"openclaw_version", "gateway_token"?, "install_only"?,
  "wait"?}`: a configuration run, as the playbook would do it. It takes `install_full` or
  `install_config_only` simulated seconds (`clock`), depending on whether the disk already has
  the packages of that version. Without `wait` it answers 202 at once with `mode` and
  `duration_seconds` (wall clock) and the gateway comes up when the run ends; with
  `"wait": true` it answers 200 when done (409 when a boot interrupted it). 409 unless the
  server is running and reachable, or while another run is in progress.
- `GET /admin/servers/{id}/disk`: `{"files": {path: size}, "base_gb", "used_gb", "disk_gb"}`;
  `PUT` with `{"base_gb": N}` sets the data not modelled file by file (to make a disk big).
- `GET|PUT|DELETE /admin/servers/{id}/disk/{path}`: one file's raw bytes (`path` without its
  leading slash: `/admin/servers/7/disk/home/openclaw/notes.txt` is `/home/openclaw/notes.txt`).
- `POST /admin/servers/{id}/traffic` `{"outgoing"?, "ingoing"?, "mode": "add"|"set"}`: bytes
  counted this billing period (what `outgoing_traffic`/`ingoing_traffic` show).
- `PUT /admin/servers/{id}/created` `{"created": ISO 8601 with offset}`: move the server's
  creation time (what `created` shows, and what Hetzner bills from): lets a test price a
  server "running for 90 minutes" or "kept a week" without waiting.
- `PUT /admin/servers/{id}/health` `{"gateway": "healthy"|"unhealthy"|"wedged",
  "gateway_clears_on": "restart"|"reboot"|"never", "reachable": bool,
  "reachable_clears_on": "reboot"|"never"}` (any subset).
- `POST /admin/servers/{id}/gateway/restart` `{"wait"?}`: restart the gateway service (what
  the operator does over the tailnet); 409 when the server is not running or unreachable.
- `POST /admin/servers/{id}/gateway/config` `{"openclaw_version", "gateway_token", "wait"?}`:
  a configuration push on a configured host with that version installed (a warm server
  handed to a customer): the gateway's config gets the token (`config_push` simulated
  seconds), then the gateway restarts (`gateway_restart`). 202 at once with
  `duration_seconds`, or 200 when the gateway is back with `"wait": true`; 409 when the host
  is not running, not reachable, busy, not configured or has another version.
- `POST /admin/servers/{id}/gateway` `{"running": bool}`: stop or start the gateway service
  (a consistent checkpoint's quiesce); 409 as for a restart.

Errors are `{"error": message}` naming the field. `server_view` is the admin view of a server
(`GET /admin/servers/{id}`), which every endpoint here answers with.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from aura_sandbox import catalog, disk, host
from aura_sandbox.http_faults import WORLD_KEY
from aura_sandbox.model import SimServer
from aura_sandbox.world import World


def server_view(world: World, server: SimServer) -> dict[str, Any]:
    if not server.booted_once:
        cloud_init = "pending"
    else:
        cloud_init = "done" if server.cloud_init_done else "running"
    return {
        "id": server.id,
        "name": server.name,
        "status": server.status,
        "locked": server.locked,
        "labels": server.labels,
        "server_type": server.server_type,
        "location": server.location,
        "ipv4": server.ipv4,
        "ipv6": server.ipv6,
        "created": server.created.isoformat(),
        "user_data": server.user_data,
        "configured": server.configured,
        "openclaw_version": server.openclaw_version,
        "cloud_init": cloud_init,
        "first_boot": server.first_boot,
        "booted_once": server.booted_once,
        "configuring": server.configuring,
        "gateway_url": world.gateway_url(server),
        "gateway": host.gateway_state(server),
        "gateway_fault": server.gateway_fault,
        "gateway_fault_clears_on": server.gateway_fault_clears_on,
        "reachable": not server.unreachable,
        "reachable_clears_on": server.unreachable_clears_on,
        "image_id": server.image_id,
        "disk_used_gb": disk.used_gb(server.disk, server.disk_base_gb),
        "outgoing_traffic": server.outgoing_traffic,
        "ingoing_traffic": server.ingoing_traffic,
    }


class _Fail(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _server(request: web.Request) -> SimServer:
    world = request.app[WORLD_KEY]
    try:
        server = world.servers.get(int(request.match_info["id"]))
    except ValueError:
        server = None
    if server is None:
        raise _Fail(404, "server not found")
    return server


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.body_exists:
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise _Fail(400, "body must be JSON") from None
    if not isinstance(body, dict):
        raise _Fail(422, "body must be a JSON object")
    return body


def _view(
    request: web.Request, server: SimServer, status: int = 200, extra: dict[str, Any] | None = None
) -> web.Response:
    view = {**server_view(request.app[WORLD_KEY], server), **(extra or {})}
    return web.json_response(view, status=status)


def _flag(body: dict[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if not isinstance(value, bool):
        raise _Fail(422, f"{name} must be true or false")
    return value


def _handler(fn: Any) -> Any:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            result: web.StreamResponse = await fn(request)
        except _Fail as exc:
            return web.json_response({"error": str(exc)}, status=exc.status)
        except host.HostError as exc:
            return web.json_response({"error": str(exc)}, status=409)
        request.app[WORLD_KEY].mark_dirty()
        return result

    return wrapped


async def configure(request: web.Request) -> web.StreamResponse:
    world: World = request.app[WORLD_KEY]
    server = _server(request)
    body = await _body(request)
    version = body.get("openclaw_version")
    if not isinstance(version, str) or not version:
        raise _Fail(422, "openclaw_version (a non-empty string) is required")
    token = body.get("gateway_token")
    if token is not None and (not isinstance(token, str) or not token):
        raise _Fail(422, "gateway_token must be a non-empty string when given")
    install_only, wait = _flag(body, "install_only"), _flag(body, "wait")
    mode, seconds, done = host.start_configuration(
        world, server, version, token, install_only=install_only
    )
    run = {"mode": mode, "duration_seconds": round(seconds * world.time_scale, 3)}
    if not wait:
        return _view(request, server, 202, run)
    await done
    return _view(request, server, 200, run)


async def get_disk(request: web.Request) -> web.StreamResponse:
    server = _server(request)
    return web.json_response(
        {
            "files": {p: len(b) for p, b in sorted(server.disk.items())},
            "base_gb": round(server.disk_base_gb, 3),
            "used_gb": disk.used_gb(server.disk, server.disk_base_gb),
            "disk_gb": catalog.SERVER_TYPE_BY_NAME[server.server_type]["disk"],
        }
    )


async def put_disk(request: web.Request) -> web.StreamResponse:
    server = _server(request)
    base = (await _body(request)).get("base_gb")
    disk_gb = catalog.SERVER_TYPE_BY_NAME[server.server_type]["disk"]
    if isinstance(base, bool) or not isinstance(base, (int, float)) or not 0 <= base <= disk_gb:
        raise _Fail(422, f"base_gb must be a number of GB between 0 and the disk's {disk_gb}")
    server.disk_base_gb = float(base)
    return await get_disk(request)


def _path(request: web.Request) -> str:
    path = "/" + request.match_info["path"]
    if not disk.valid_path(path):
        raise _Fail(422, f"path {path!r} must be absolute and normalised, without '..'")
    return path


async def read_file(request: web.Request) -> web.StreamResponse:
    server, path = _server(request), _path(request)
    if path not in server.disk:
        raise _Fail(404, f"no file {path} on server {server.id}")
    return web.Response(body=server.disk[path], content_type="application/octet-stream")


async def write_file(request: web.Request) -> web.StreamResponse:
    server, path = _server(request), _path(request)
    data = await request.read()
    if len(data) > disk.MAX_FILE_BYTES:
        raise _Fail(413, f"file larger than {disk.MAX_FILE_BYTES} bytes; use base_gb for bulk")
    created = path not in server.disk
    server.disk[path] = data
    return web.Response(status=201 if created else 204)


async def delete_file(request: web.Request) -> web.StreamResponse:
    server, path = _server(request), _path(request)
    if server.disk.pop(path, None) is None:
        raise _Fail(404, f"no file {path} on server {server.id}")
    return web.Response(status=204)


async def traffic(request: web.Request) -> web.StreamResponse:
    server = _server(request)
    body = await _body(request)
    mode = body.get("mode", "add")
    if mode not in ("add", "set"):
        raise _Fail(422, "mode must be add or set")
    for key in ("outgoing", "ingoing"):
        if key not in body:
            continue
        value = body[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise _Fail(422, f"{key} must be a number of bytes >= 0")
        attr = f"{key}_traffic"
        setattr(server, attr, value if mode == "set" else getattr(server, attr) + value)
    return _view(request, server)


async def set_created(request: web.Request) -> web.StreamResponse:
    server = _server(request)
    body = await _body(request)
    raw = body.get("created")
    try:
        when = datetime.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise _Fail(
            422, "created must be an ISO 8601 time with an offset, e.g. 2026-12-01T00:00:00+00:00"
        )
    server.created = when.astimezone(UTC)
    return _view(request, server)


def _choice(body: dict[str, Any], name: str, allowed: tuple[str, ...]) -> str | None:
    value = body.get(name)
    if value is not None and value not in allowed:
        raise _Fail(422, f"{name} must be one of {', '.join(allowed)}")
    return value


async def health(request: web.Request) -> web.StreamResponse:
    server = _server(request)
    body = await _body(request)
    gateway = _choice(body, "gateway", ("healthy", *host.GATEWAY_FAULTS))
    gateway_clears = _choice(body, "gateway_clears_on", host.CLEARS_ON)
    reachable_clears = _choice(body, "reachable_clears_on", ("reboot", "never"))
    reachable = body.get("reachable")
    if reachable is not None and not isinstance(reachable, bool):
        raise _Fail(422, "reachable must be true or false")
    if gateway is not None:
        server.gateway_fault = None if gateway == "healthy" else gateway
        server.gateway_fault_clears_on = gateway_clears or "restart"
    elif gateway_clears is not None:
        server.gateway_fault_clears_on = gateway_clears
    if reachable is not None:
        server.unreachable = not reachable
        server.unreachable_clears_on = reachable_clears or "never"
    elif reachable_clears is not None:
        server.unreachable_clears_on = reachable_clears
    return _view(request, server)


async def restart_gateway(request: web.Request) -> web.StreamResponse:
    world: World = request.app[WORLD_KEY]
    server = _server(request)
    wait = _flag(await _body(request), "wait")
    seconds, done = host.restart_gateway(world, server)
    run = {"duration_seconds": round(seconds * world.time_scale, 3)}
    if not wait:
        return _view(request, server, 202, run)
    await asyncio.shield(done)
    return _view(request, server, 200, run)


async def push_config(request: web.Request) -> web.StreamResponse:
    world: World = request.app[WORLD_KEY]
    server = _server(request)
    body = await _body(request)
    version, token = body.get("openclaw_version"), body.get("gateway_token")
    if not isinstance(version, str) or not version:
        raise _Fail(422, "openclaw_version (a non-empty string) is required")
    if not isinstance(token, str) or not token:
        raise _Fail(422, "gateway_token (a non-empty string) is required")
    wait = _flag(body, "wait")
    seconds, done = host.start_config_push(world, server, version, token)
    run = {"duration_seconds": round(seconds * world.time_scale, 3)}
    if not wait:
        return _view(request, server, 202, run)
    await asyncio.shield(done)
    return _view(request, server, 200, run)


async def gateway_running(request: web.Request) -> web.StreamResponse:
    world: World = request.app[WORLD_KEY]
    server = _server(request)
    body = await _body(request)
    running = body.get("running")
    if not isinstance(running, bool):
        raise _Fail(422, "running: must be true or false")
    host.set_gateway_running(world, server, running)
    return _view(request, server)


def setup_routes(app: web.Application) -> None:
    r = app.router
    base = "/admin/servers/{id}"
    r.add_post(base + "/configure", _handler(configure))
    r.add_get(base + "/disk", _handler(get_disk))
    r.add_put(base + "/disk", _handler(put_disk))
    r.add_get(base + "/disk/{path:.+}", _handler(read_file))
    r.add_put(base + "/disk/{path:.+}", _handler(write_file))
    r.add_delete(base + "/disk/{path:.+}", _handler(delete_file))
    r.add_post(base + "/traffic", _handler(traffic))
    r.add_put(base + "/created", _handler(set_created))
    r.add_put(base + "/health", _handler(health))
    r.add_post(base + "/gateway/restart", _handler(restart_gateway))
    r.add_post(base + "/gateway/config", _handler(push_config))
    r.add_post(base + "/gateway", _handler(gateway_running))
