"""The one simulated world every sandbox API reads and writes.

Contract for API modules (Hetzner, Tailscale, Stripe, admin):

- Single-threaded: touch the world only from the sandbox event loop (the harness marshals
  calls from test threads with `Sandbox.call`).
- `now()` is wall-clock UTC. `schedule(delay, callback)` runs `callback()` after
  `delay * time_scale` seconds and returns a cancellable handle; pass *realistic* seconds.
- `servers` maps id to `SimServer` (see `model`); `server_by_name(name)` is O(1).
- `add_server_listener(fn)`: `fn(event, server)` with event `"booted"` (reached `running`;
  `server.first_boot` says whether it was the first boot), `"powered_off"` or `"deleted"`.
  Listener exceptions are logged, never propagated into the API request.
- `register_part(name, obj)`: `obj.to_dict()` / `obj.load_dict(d)` are saved to and loaded
  from `--state FILE` (on start, every `save_interval` seconds when `mark_dirty()` was called,
  and on shutdown). The Hetzner state itself is the part named `"hetzner"`.
- `faults` is the `FaultRegistry`; `consume(kind, **match)` takes one matching fault.
- `ready_info` is the dict printed as the ready JSON line; modules add their keys in `setup()`.
- `request_counts` counts requests per `"METHOD /route/{template}"`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from aura_sandbox.config import SandboxConfig
from aura_sandbox.faults import FaultRegistry
from aura_sandbox.model import SimAction, SimFirewall, SimImage, SimServer, SimSshKey
from aura_sandbox.pricing import PriceTable

log = logging.getLogger(__name__)

ServerListener = Callable[[str, SimServer], None]


class Part(Protocol):
    def to_dict(self) -> dict[str, Any]: ...
    def load_dict(self, d: dict[str, Any]) -> None: ...


class Handle(Protocol):
    def cancel(self) -> None: ...


class _Immediate:
    """Handle for callbacks scheduled before the loop runs (never happens in practice)."""

    def cancel(self) -> None:
        pass


class HetznerState:
    """The Hetzner half of the world, persisted as part `"hetzner"`."""

    def __init__(self) -> None:
        self.servers: dict[int, SimServer] = {}
        self.server_ids_by_name: dict[str, int] = {}
        self.actions: dict[int, SimAction] = {}
        self.images: dict[int, SimImage] = {}
        self.ssh_keys: dict[int, SimSshKey] = {}
        self.firewalls: dict[int, SimFirewall] = {}
        self.pricing = PriceTable()
        # Realistic-looking, distinct id ranges so a mixed-up id is a 404, not a wrong object.
        self.counters: dict[str, int] = {
            "server": 58_000_000,
            "action": 2_100_000_000,
            "image": 240_000_000,
            "ssh_key": 26_000_000,
            "firewall": 1_900_000,
            "primary_ip": 80_000_000,
            "ip": 0,
        }

    def next_id(self, kind: str) -> int:
        self.counters[kind] += 1
        return self.counters[kind]

    def to_dict(self) -> dict[str, Any]:
        return {
            "servers": [s.to_dict() for s in self.servers.values()],
            "actions": [a.to_dict() for a in self.actions.values()],
            "images": [i.to_dict() for i in self.images.values()],
            "ssh_keys": [k.to_dict() for k in self.ssh_keys.values()],
            "firewalls": [f.to_dict() for f in self.firewalls.values()],
            "counters": self.counters,
            "pricing": self.pricing.to_dict(),
        }

    def load_dict(self, d: dict[str, Any]) -> None:
        self.counters.update(d.get("counters", {}))
        self.pricing.load_dict(d.get("pricing", {}))
        self.actions = {a["id"]: SimAction.from_dict(a) for a in d.get("actions", [])}
        self.images = {i["id"]: SimImage.from_dict(i) for i in d.get("images", [])}
        self.ssh_keys = {k["id"]: SimSshKey.from_dict(k) for k in d.get("ssh_keys", [])}
        self.firewalls = {f["id"]: SimFirewall.from_dict(f) for f in d.get("firewalls", [])}
        self.servers = {s["id"]: SimServer.from_dict(s) for s in d.get("servers", [])}
        self.server_ids_by_name = {s.name: s.id for s in self.servers.values()}
        self._settle()

    def _settle(self) -> None:
        """Timers do not survive a restart: finish what was in flight, as a reboot would."""
        now = datetime.now(UTC)
        for action in self.actions.values():
            if action.status == "running":
                action.status, action.finished, action.progress_done = "success", now, 100
        for image in self.images.values():
            if image.status == "creating":
                image.status, image.image_size = "available", image.used_gb
        for server in self.servers.values():
            server.lock_actions.clear()
            server.rebooting = server.configuring = server.gateway_restarting = False
            if server.status in ("initializing", "starting") and not server.never_boots:
                server.status, server.booted_once, server.first_boot = "running", True, False
            elif server.status == "stopping":
                server.status = "off"
            elif server.status == "rebuilding":
                server.status, server.booted_once = "running", True
            if server.booted_once:
                server.cloud_init_done = True


class World:
    """See the module docstring."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.time_scale = config.time_scale
        self.hetzner = HetznerState()
        self.faults = FaultRegistry()
        self.request_counts: collections.Counter[str] = collections.Counter()
        self.ready_info: dict[str, Any] = {}
        self.base_url = ""
        self._listeners: list[ServerListener] = []
        self._parts: dict[str, Part] = {"hetzner": self.hetzner}
        self._dirty = False
        self.started_mono = time.monotonic()

    # Time -------------------------------------------------------------------------------

    def now(self) -> datetime:
        return datetime.now(UTC).replace(microsecond=0)

    def schedule(self, delay_seconds: float, callback: Callable[[], None]) -> Handle:
        """Run `callback` after `delay_seconds * time_scale` wall-clock seconds."""

        def run() -> None:
            try:
                callback()
            except Exception:
                log.exception("scheduled world callback failed")
            self._dirty = True

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            run()
            return _Immediate()
        return loop.call_later(max(0.0, delay_seconds * self.time_scale), run)

    def loop_time(self) -> float:
        try:
            return asyncio.get_running_loop().time()
        except RuntimeError:
            return time.monotonic()

    # Servers ----------------------------------------------------------------------------

    @property
    def servers(self) -> dict[int, SimServer]:
        return self.hetzner.servers

    def server_by_name(self, name: str) -> SimServer | None:
        sid = self.hetzner.server_ids_by_name.get(name)
        return self.hetzner.servers.get(sid) if sid is not None else None

    def add_server_listener(self, fn: ServerListener) -> None:
        self._listeners.append(fn)

    def emit(self, event: str, server: SimServer) -> None:
        self._dirty = True
        for fn in list(self._listeners):
            try:
                fn(event, server)
            except Exception:
                log.exception("server listener failed on %s of %s", event, server.name)

    def gateway_url(self, server: SimServer) -> str:
        return f"{self.base_url}/_gateway/{server.id}"

    # Persistence ------------------------------------------------------------------------

    def register_part(self, name: str, obj: Part) -> None:
        self._parts[name] = obj

    def mark_dirty(self) -> None:
        self._dirty = True

    def to_dict(self) -> dict[str, Any]:
        return {"version": 1, "parts": {name: p.to_dict() for name, p in self._parts.items()}}

    def save(self, path: Path) -> None:
        """Write all parts atomically (write to a temp file, then rename)."""
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), separators=(",", ":")))
        os.replace(tmp, path)
        self._dirty = False

    def load(self, path: Path) -> bool:
        """Load parts from `path`; False when the file does not exist yet."""
        if not path.exists():
            return False
        data = json.loads(path.read_text())
        for name, part_data in data.get("parts", {}).items():
            part = self._parts.get(name)
            if part is None:
                log.warning("state file has part %r that no module registered", name)
                continue
            part.load_dict(part_data)
        return True

    async def autosave(self, path: Path) -> None:
        """Save every `save_interval` seconds while something changed; cancel to stop."""
        while True:
            await asyncio.sleep(self.config.save_interval)
            if self._dirty:
                with contextlib.suppress(OSError):
                    self.save(path)
