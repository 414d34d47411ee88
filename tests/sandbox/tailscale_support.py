"""A Tailscale-only sandbox for tests: the real `World` and `tailscale.setup`, over plain HTTP.

`tailscale_sandbox()` serves an aiohttp app with the request-fault middleware and the
Tailscale module on a local port, and yields a `TailscaleSandbox` whose httpx client checks
every response against the OpenAPI spec (`tailscale_openapi.validate`). Servers are simulated
by emitting the world's listener events directly (`boot`, `power_off`, `delete`), which is
exactly what the Hetzner half does; the end-to-end test through `/v1` lives in
`test_tailscale_e2e.py`.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from aiohttp import web
from aiohttp.test_utils import TestServer

from aura_sandbox import http_faults, tailscale
from aura_sandbox.config import SandboxConfig
from aura_sandbox.model import SimServer
from aura_sandbox.tailnet import Tailnet
from aura_sandbox.world import World
from tests.polling import wait_for_async
from tests.sandbox import tailscale_openapi

TIME_SCALE = 0.001
"""45 s joins take 45 ms, the 30 min ephemeral clean-up 1.8 s."""
_server_ids = itertools.count(58_100_000)


def cloud_config(key: str, hostname: str | None = None, flag: str = "--auth-key=") -> str:
    """A `#cloud-config` that installs Tailscale and joins with `key`, like the operator's."""
    up = f"tailscale up {flag}{key}"
    if hostname:
        up += f" --hostname={hostname}"
    return (
        "#cloud-config\n"
        "package_update: true\n"
        "runcmd:\n"
        "  - ['sh', '-c', 'curl -fsSL https://tailscale.com/install.sh | sh']\n"
        f"  - {up}\n"
    )


async def _validate(response: httpx.Response) -> None:
    await response.aread()
    if response.request.url.path.startswith(tailscale.PREFIX):
        tailscale_openapi.validate(
            response.request.method,
            response.request.url.path,
            response.status_code,
            response.content,
        )


@dataclass
class TailscaleSandbox:
    config: SandboxConfig
    world: World
    tailnet: Tailnet
    http: httpx.AsyncClient
    """Validates every `/api/v2` response; carries no credentials."""
    api: httpx.AsyncClient
    """Same, with a Bearer token of the OAuth client (all its scopes and tags)."""

    async def token(self, **form: str) -> str:
        """A fresh access token; `form` adds `scope=` / `tags=`."""
        r = await self.http.post(
            "/api/v2/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": self.config.tailscale_client_id,
                "client_secret": self.config.tailscale_client_secret,
                **form,
            },
        )
        assert r.status_code == 200, r.text
        token: str = r.json()["access_token"]
        return token

    async def create_key(self, **create: Any) -> dict[str, Any]:
        """Mint an auth key (tags default to `tag:aura-agent`); returns the create response."""
        body = {"capabilities": {"devices": {"create": {"tags": ["tag:aura-agent"], **create}}}}
        r = await self.api.post("/api/v2/tailnet/-/keys", json=body)
        assert r.status_code == 200, r.text
        key: dict[str, Any] = r.json()
        return key

    def boot(
        self, name: str, user_data: str | None, disk: dict[str, bytes] | None = None
    ) -> SimServer:
        """A server that just reached `running` for the first time (with `disk` on it)."""
        server = SimServer(
            id=next(_server_ids),
            name=name,
            server_type="cx23",
            location="nbg1",
            image_id=None,
            created=datetime.now(UTC),
            ipv4=None,
            ipv4_id=None,
            ipv6=None,
            ipv6_id=None,
            status="running",
            user_data=user_data,
            disk=dict(disk or {}),
        )
        self.world.hetzner.servers[server.id] = server
        self.world.hetzner.server_ids_by_name[name] = server.id
        self.world.emit("booted", server)
        server.first_boot = False
        return server

    def power_off(self, server: SimServer) -> None:
        server.status = "off"
        self.world.emit("powered_off", server)

    def power_on(self, server: SimServer) -> None:
        server.status = "running"
        self.world.emit("booted", server)

    def delete(self, server: SimServer) -> None:
        self.world.hetzner.servers.pop(server.id, None)
        self.world.emit("deleted", server)

    async def devices(self, **query: str) -> list[dict[str, Any]]:
        r = await self.api.get("/api/v2/tailnet/-/devices", params=query)
        assert r.status_code == 200, r.text
        devices: list[dict[str, Any]] = r.json()["devices"]
        return devices

    async def device_of(self, hostname: str, within: float = 5.0) -> dict[str, Any]:
        """Wait for the one device with this `hostname` (polling, like the operator will)."""
        found = await wait_for_async(lambda: self.devices(hostname=hostname), within)
        assert len(found) == 1, found
        return found[0]

    async def join_outcome(self, server_name: str, within: float = 5.0) -> dict[str, Any]:
        """Wait until the join attempt of `server_name` is decided (`joined` or `failed`)."""

        async def decided() -> dict[str, Any] | None:
            r = await self.http.get("/admin/tailnet/joins")
            for join in r.json()["joins"]:
                if join["server_name"] == server_name and join["outcome"] != "pending":
                    found: dict[str, Any] = join
                    return found
            return None

        decision: dict[str, Any] = await wait_for_async(decided, within)
        return decision

    async def settle(self, simulated_seconds: float) -> None:
        """Let `simulated_seconds` of sandbox time pass."""
        await asyncio.sleep(simulated_seconds * self.config.time_scale)


@asynccontextmanager
async def tailscale_sandbox(**config: Any) -> AsyncIterator[TailscaleSandbox]:
    """Serve a Tailscale-only sandbox on 127.0.0.1; see the module docstring."""
    cfg = SandboxConfig(**{"time_scale": TIME_SCALE, **config})
    world = World(cfg)
    app = web.Application()
    http_faults.setup(app, world, cfg)
    tailscale.setup(app, world, cfg)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    base = str(server.make_url("")).rstrip("/")
    world.base_url = base
    hooks = {"response": [_validate]}
    try:
        async with httpx.AsyncClient(base_url=base, event_hooks=hooks) as http:
            sandbox = TailscaleSandbox(cfg, world, app[tailscale.TAILNET_KEY], http, http)
            token = await sandbox.token()
            async with httpx.AsyncClient(
                base_url=base, event_hooks=hooks, headers={"Authorization": f"Bearer {token}"}
            ) as api:
                sandbox.api = api
                yield sandbox
    finally:
        await server.close()
