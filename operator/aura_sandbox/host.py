"""What runs inside a simulated server: configuration runs, the gateway service, its health
faults and its heartbeat. The HTTP faces are `admin_servers` (admin API) and `gateway`.

The gateway's state (`gateway_state`), in the order it is decided:

- `down` (nothing listens; connections are dropped): the server is gone, not `running`, booting
  or rebooting, `unreachable`, not configured, being configured, its service restarting, or
  stopped (`set_gateway_running`, what a consistent checkpoint does; any boot starts it again);
- `unhealthy`: HTTP probes answer 503 and the WebSocket refuses `connect`;
- `wedged`: HTTP answers ready, but the WebSocket handshake never completes;
- `serving`: everything answers, and the heartbeat file is rewritten every
  `Timings.heartbeat_interval` simulated seconds.

What clears a fault, as on a real host: a service restart (`restart_gateway`) clears a
gateway fault whose `clears_on` is `restart`; a boot (reboot, reset, power cycle, rebuild)
clears gateway faults unless `never`, and `unreachable` only when its `clears_on` is `reboot`
(the default `never` models a host whose network is broken beyond a reboot; only the admin
clears it). A boot also interrupts a configuration run or a restart in progress.

A configuration run takes `Timings.install_full` when the packages marker on the disk is
missing or names another version, else `Timings.install_config_only` (a golden image). It
writes the marker and `disk_base_gb += packages_gb` (full install), then the gateway config
with the token (unless `install_only`, which a golden-image build uses), and marks the server
configured.

A configuration push (`start_config_push`, the handover play of `ansible/gateway-service.yml`)
is what a warm server needs when a customer takes it: the packages and the gateway are there,
only the gateway's config and token change. It takes `Timings.config_push`, then the gateway
restarts (`Timings.gateway_restart`); it is refused on a server that is not configured or has
another version installed (those need the playbook).
"""

from __future__ import annotations

import asyncio
import json
from typing import Literal

from aura_sandbox import disk
from aura_sandbox.model import SimServer
from aura_sandbox.world import World

GatewayState = Literal["down", "unhealthy", "wedged", "serving"]
GATEWAY_FAULTS = ("unhealthy", "wedged")
CLEARS_ON = ("restart", "reboot", "never")


class HostError(Exception):
    """The host cannot do that now (the admin API answers 409 with this message)."""


def gateway_state(server: SimServer | None) -> GatewayState:
    if server is None or server.deleted or server.status != "running" or server.rebooting:
        return "down"
    if server.unreachable or not server.configured:
        return "down"
    if server.configuring or server.gateway_restarting or server.gateway_stopped:
        return "down"
    if server.gateway_fault == "unhealthy":
        return "unhealthy"
    if server.gateway_fault == "wedged":
        return "wedged"
    return "serving"


def _require_reachable(server: SimServer) -> None:
    if server.status != "running" or server.rebooting:
        raise HostError(f"server is {server.status}, not running")
    if server.unreachable:
        raise HostError("server is unreachable")


def configuration_mode(server: SimServer, version: str) -> str:
    return "config_only" if disk.installed_version(server.disk) == version else "full_install"


def apply_configuration(
    world: World, server: SimServer, version: str, token: str | None, *, install_only: bool
) -> None:
    """The end state of a successful run (instant; `start_configuration` adds the time)."""
    if disk.installed_version(server.disk) != version:
        if disk.installed_version(server.disk) is None:
            server.disk_base_gb += world.config.timings.packages_gb
        disk.write_packages(server.disk, version)
    if not install_only:
        disk.write_gateway_config(server.disk, version, token)
        server.configured, server.openclaw_version = True, version
    world.mark_dirty()


def start_configuration(
    world: World, server: SimServer, version: str, token: str | None, *, install_only: bool
) -> tuple[str, float, asyncio.Future[None]]:
    """Start a run; returns its mode, its realistic duration and a future that ends with it
    (with `HostError` when a boot or a deletion interrupted it)."""
    _require_reachable(server)
    if server.configuring:
        raise HostError("a configuration run is already in progress")
    mode = configuration_mode(server, version)
    seconds = world.config.timings.configure_seconds(packages_installed=mode == "config_only")
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    server.configuring = True
    boots = server.boot_count

    def finish() -> None:
        interrupted = server.deleted or server.boot_count != boots or not server.configuring
        server.configuring = False
        if interrupted or server.status != "running":
            if not done.done():
                done.set_exception(HostError("the configuration run was interrupted"))
            return
        apply_configuration(world, server, version, token, install_only=install_only)
        if not done.done():
            done.set_result(None)

    world.schedule(seconds, finish)
    return mode, seconds, done


def start_config_push(
    world: World, server: SimServer, version: str, token: str
) -> tuple[float, asyncio.Future[None]]:
    """Start a configuration push; returns its realistic duration (push and restart) and a
    future that ends when the gateway is back (`HostError` when a boot or a deletion
    interrupted it)."""
    _require_reachable(server)
    if server.configuring:
        raise HostError("a configuration run is already in progress")
    if not server.configured:
        raise HostError("the gateway is not installed and configured on this server")
    installed = disk.installed_version(server.disk)
    if installed != version:
        raise HostError(f"OpenClaw {version} is not installed (found {installed}): run site.yml")
    timings = world.config.timings
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    server.configuring = True  # one run at a time; the play's service restart follows it
    boots = server.boot_count

    def pushed() -> None:
        interrupted = server.deleted or server.boot_count != boots or not server.configuring
        server.configuring = False
        if interrupted or server.status != "running":
            if not done.done():
                done.set_exception(HostError("the configuration push was interrupted"))
            return
        disk.write_gateway_config(server.disk, version, token)
        world.mark_dirty()
        _, restarted = restart_gateway(world, server)
        restarted.add_done_callback(_resolve)

    def _resolve(_: asyncio.Future[None]) -> None:
        if not done.done():
            done.set_result(None)

    world.schedule(timings.config_push, pushed)
    return timings.config_push + timings.gateway_restart, done


def restart_gateway(world: World, server: SimServer) -> tuple[float, asyncio.Future[None]]:
    """`systemctl restart` of the gateway: down for `Timings.gateway_restart`, after which a
    fault that a restart clears is gone."""
    _require_reachable(server)
    if not server.configured:
        raise HostError("the gateway is not installed and configured on this server")
    seconds = world.config.timings.gateway_restart
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    server.gateway_restarting = True
    if server.gateway_fault is not None and server.gateway_fault_clears_on == "restart":
        server.gateway_fault = None
    boots = server.boot_count

    def finish() -> None:
        if server.boot_count == boots and server.gateway_restarting:
            server.gateway_restarting = False
        if not done.done():
            done.set_result(None)

    world.schedule(seconds, finish)
    return seconds, done


def set_gateway_running(world: World, server: SimServer, running: bool) -> None:
    """`systemctl stop` / `systemctl start` of the gateway (instant, idempotent). A stopped
    gateway writes nothing to the disk, so a snapshot taken meanwhile is consistent."""
    _require_reachable(server)
    if not server.configured:
        raise HostError("the gateway is not installed and configured on this server")
    server.gateway_stopped = not running
    world.mark_dirty()


def heartbeat(world: World) -> int:
    """Write the heartbeat file on every serving gateway's disk; returns how many."""
    written = 0
    for server in world.servers.values():
        if gateway_state(server) != "serving":
            continue
        beats = 0
        raw = server.disk.get(disk.HEARTBEAT)
        if raw:
            try:
                beats = int(json.loads(raw).get("beats", 0))
            except (ValueError, AttributeError):
                beats = 0
        record = {"at": world.now().isoformat(), "beats": beats + 1, "host": server.name}
        server.disk[disk.HEARTBEAT] = json.dumps(record).encode()
        written += 1
    if written:
        world.mark_dirty()
    return written


async def heartbeat_loop(world: World) -> None:
    """Run `heartbeat` forever at the scaled interval (at least every 50 ms of wall time)."""
    while True:
        await asyncio.sleep(max(0.05, world.config.timings.heartbeat_interval * world.time_scale))
        heartbeat(world)
