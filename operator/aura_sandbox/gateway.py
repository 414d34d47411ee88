"""Simulated agent gateways: what an OpenClaw gateway on each server would answer.

Address: every server's gateway is `{sandbox}/_gateway/{server_id}` on the sandbox's own
loopback port, e.g. `http://127.0.0.1:PORT/_gateway/58000001`, with `GET /healthz` (liveness)
and `GET /readyz` (readiness), like OpenClaw's gateway port (openclaw.md 1.5). An operator
finds it in `GET /admin/servers/{id}` (`gateway_url`), or builds it from the sandbox base URL
and the Hetzner server id; in production the same probe goes to the server's tailnet address
on port 18789.

Behaviour, modelled on a real host:

- server running, not rebooting, and configured (`POST /admin/servers/{id}/configure`): 200
  with JSON (`/readyz`: `{"ready": true, "status": "ready", "version", ...}`);
- anything else (unknown or deleted server, off, booting, rebooting, or running but not yet
  configured, i.e. nothing listens on the port): the connection is closed without an answer,
  which HTTP clients report as a connection error, never as an HTTP status.
"""

from __future__ import annotations

from aiohttp import web

from aura_sandbox.config import SandboxConfig
from aura_sandbox.http_faults import WORLD_KEY, drop_connection
from aura_sandbox.model import SimServer
from aura_sandbox.world import World

PREFIX = "/_gateway"


def _live_server(request: web.Request) -> SimServer:
    world = request.app[WORLD_KEY]
    try:
        server = world.servers.get(int(request.match_info["id"]))
    except ValueError:
        server = None
    if server is None or server.status != "running" or server.rebooting or not server.configured:
        raise drop_connection(request)
    return server


async def healthz(request: web.Request) -> web.Response:
    _live_server(request)
    return web.json_response({"ok": True, "status": "live"})


async def readyz(request: web.Request) -> web.Response:
    server = _live_server(request)
    return web.json_response(
        {
            "ready": True,
            "status": "ready",
            "version": server.openclaw_version,
            "host": server.name,
            "checks": {"gateway": "ok", "config": "ok"},
        }
    )


def setup(app: web.Application, world: World, config: SandboxConfig) -> None:
    app.router.add_get(PREFIX + "/{id}/healthz", healthz)
    app.router.add_get(PREFIX + "/{id}/readyz", readyz)
