"""Assemble the sandbox: one aiohttp application over one `World`.

`API_MODULES` are imported with importlib, in order; each exposes
`setup(app: web.Application, world: World, config: SandboxConfig) -> None` that adds its routes,
middlewares, persisted parts (`world.register_part`) and ready-line keys (`world.ready_info`).
`world.base_url` is already final when `setup` runs, because the socket is bound first.
Middlewares run in the order they were appended; `http_faults` always comes first so injected
faults and request counts cover every API.

`SandboxRuntime` owns the lifecycle: `await start()` binds, loads `--state`, serves and
returns the ready info; `await stop()` saves the state and closes everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import socket
from typing import Any

from aiohttp import web

from aura_sandbox import http_faults
from aura_sandbox.config import SandboxConfig
from aura_sandbox.world import World

log = logging.getLogger(__name__)

API_MODULES = [
    "aura_sandbox.hetzner",
    "aura_sandbox.tailscale",
    "aura_sandbox.stripe",
    "aura_sandbox.admin",
    "aura_sandbox.gateway",
]

READY_KEYS = (
    "hetzner_url",
    "hetzner_token",
    "tailscale_url",
    "tailscale_client_id",
    "tailscale_client_secret",
    "tailscale_tailnet",
    "admin_url",
)


def build_app(world: World, config: SandboxConfig) -> web.Application:
    """The application with every API module set up (no socket involved)."""
    app = web.Application(client_max_size=4 * 1024 * 1024)
    world.ready_info.update(
        {
            # Defaults until the Tailscale module is in API_MODULES; it overrides them.
            "tailscale_url": world.base_url,
            "tailscale_client_id": config.tailscale_client_id,
            "tailscale_client_secret": config.tailscale_client_secret,
            "tailscale_tailnet": config.tailscale_tailnet,
        }
    )
    http_faults.setup(app, world, config)
    for name in API_MODULES:
        importlib.import_module(name).setup(app, world, config)
    return app


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(512)
    sock.setblocking(False)
    return sock


class SandboxRuntime:
    """One running sandbox inside the current event loop."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.world = World(config)
        self.app: web.Application | None = None
        self._runner: web.AppRunner | None = None
        self._autosave: asyncio.Task[None] | None = None

    async def start(self) -> dict[str, Any]:
        sock = _bind(self.config.host, self.config.port)
        host, port = sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        self.world.base_url = f"http://{shown}:{port}"
        self.app = build_app(self.world, self.config)
        if self.config.state_file is not None and self.world.load(self.config.state_file):
            log.info("loaded state from %s", self.config.state_file)
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()
        if self.config.state_file is not None:
            self._autosave = asyncio.create_task(self.world.autosave(self.config.state_file))
        return self.ready_info()

    def ready_info(self) -> dict[str, Any]:
        info = self.world.ready_info
        return {**{k: info.get(k) for k in READY_KEYS}, **info}

    async def stop(self) -> None:
        if self._autosave is not None:
            self._autosave.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._autosave
        if self.config.state_file is not None:
            self.world.save(self.config.state_file)
        if self._runner is not None:
            await self._runner.cleanup()
