"""Server and action state machines, driven by the world's scheduler.

Every state change the Hetzner API causes goes through here, so the HTTP handlers only
validate input and render output. Timings come from `config.timings` (realistic seconds, scaled
by the world). Faults consumed here: `action_error` (match `command`, `server_name`),
`server_never_boots` and `shutdown_ignored` (match `server_name`).

Transitions:

    create:   initializing --create_server--> starting --boot--> running   (or off)
    poweron:  off --start_server--> starting --boot--> running
    poweroff: running --stop_server--> off
    shutdown: running --shutdown_server (signal only)--> stopping --power down--> off
    reboot/reset: running (gateway unreachable meanwhile) --> running
    rebuild:  any --rebuild_server (disk replaced by the image's)--> rebuilding --> running
    delete:   any --delete_server--> gone at once (GET answers 404)

Every boot clears the health faults that a reboot clears (`gateway_fault` unless it is
`never`, `unreachable` only when the admin said `reboot`), and stops a configuration run.
A server from a snapshot gets the snapshot's disk (`disk.apply_image`); snapshots and rebuilds
are in `lifecycle_images`.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Callable
from typing import Any

from aura_sandbox import disk
from aura_sandbox.model import SimAction, SimServer
from aura_sandbox.tailnet_model import TAILSCALE_BINARY
from aura_sandbox.world import World


def new_action(
    world: World,
    command: str,
    resources: list[dict[str, Any]],
    duration: float | None,
    *,
    server: SimServer | None = None,
    lock: bool = True,
    on_success: Callable[[], None] | None = None,
    on_error: Callable[[], None] | None = None,
    outlives_server: bool = False,
) -> SimAction:
    """Start an action that succeeds after `duration` realistic seconds (None: never ends).

    While it runs it holds `server`'s lock (when `lock`). An `action_error` fault makes it end
    in `error` instead, and `on_error` runs in place of `on_success`. Callbacks are skipped
    once `server` is deleted, unless `outlives_server` (a snapshot finishes regardless).
    """
    h = world.hetzner
    action = SimAction(
        id=h.next_id("action"),
        command=command,
        started=world.now(),
        resources=resources,
        duration=None if duration is None else duration * world.time_scale,
        started_mono=world.loop_time(),
    )
    h.actions[action.id] = action
    fault = world.faults.consume(
        "action_error", command=command, server_name=server.name if server else None
    )
    if server is not None and lock:
        server.lock_actions.append(action.id)

    def finish() -> None:
        if action.status != "running":
            return
        action.finished = world.now()
        action.progress_done = 100
        if server is not None and action.id in server.lock_actions:
            server.lock_actions.remove(action.id)
        if fault is not None:
            action.status = "error"
            action.error = {
                "code": fault.code or "action_failed",
                "message": fault.message or "Action failed",
            }
            if on_error is not None and (outlives_server or not (server and server.deleted)):
                on_error()
            return
        action.status = "success"
        if on_success is not None and (outlives_server or not (server and server.deleted)):
            on_success()

    if duration is not None:
        world.schedule(duration, finish)
    return action


def progress(world: World, action: SimAction) -> int:
    """Percent done: linear in elapsed time, 100 only once finished. An action younger than
    one simulated second reports 0, so the response that creates it always does (a scheduler
    hiccup of a few milliseconds at a small time scale is not progress)."""
    if action.status != "running":
        return 100 if action.status == "success" else action.progress_done
    if not action.duration:
        return 0
    elapsed = world.loop_time() - action.started_mono
    if elapsed < world.time_scale:
        return 0
    return max(0, min(99, int(elapsed / action.duration * 100)))


def server_resources(server: SimServer) -> list[dict[str, Any]]:
    return [{"id": server.id, "type": "server"}]


def _allocate_ips(world: World) -> tuple[str, int, str, int]:
    n = world.hetzner.next_id("ip")
    # 198.18.0.0/15 is reserved for benchmarks: it looks public but can never reach a real host.
    ipv4 = f"198.{18 + (n >> 16) % 2}.{(n >> 8) & 0xFF}.{n & 0xFF or 1}"
    ipv6 = f"2001:db8:{n >> 16:x}:{n & 0xFFFF:x}::/64"
    return ipv4, world.hetzner.next_id("primary_ip"), ipv6, world.hetzner.next_id("primary_ip")


def create_server(
    world: World,
    *,
    name: str,
    server_type: str,
    location: str,
    image_id: int | None,
    labels: dict[str, str],
    user_data: str | None,
    ssh_keys: list[int],
    firewalls: list[int],
    start_after_create: bool,
    enable_ipv4: bool = True,
    enable_ipv6: bool = True,
) -> tuple[SimServer, SimAction, list[SimAction]]:
    """Create a server in `initializing`; returns it, `create_server` and the next actions."""
    h = world.hetzner
    ipv4, ipv4_id, ipv6, ipv6_id = _allocate_ips(world)
    server = SimServer(
        id=h.next_id("server"),
        name=name,
        server_type=server_type,
        location=location,
        image_id=image_id,
        created=world.now(),
        ipv4=ipv4 if enable_ipv4 else None,
        ipv4_id=ipv4_id if enable_ipv4 else None,
        ipv6=ipv6 if enable_ipv6 else None,
        ipv6_id=ipv6_id if enable_ipv6 else None,
        labels=labels,
        user_data=user_data,
        ssh_keys=ssh_keys,
        firewalls=firewalls,
        root_password=None if ssh_keys else secrets.token_urlsafe(15),
    )
    server.never_boots = world.faults.consume("server_never_boots", server_name=name) is not None
    restore = disk.apply_image(world, server, image_id)
    h.servers[server.id] = server
    h.server_ids_by_name[name] = server.id
    for fw_id in firewalls:
        h.firewalls[fw_id].servers.append(server.id)
    t = world.config.timings
    next_actions: list[SimAction] = []
    start_action: SimAction | None = None

    def created() -> None:
        if start_action is None:
            server.status = "off"
        elif start_action.status == "running":
            server.status = "starting"

    def create_failed() -> None:
        server.status = "off"
        if start_action is not None and start_action.status == "running":
            start_action.status, start_action.finished = "error", world.now()
            start_action.error = {"code": "action_failed", "message": "server creation failed"}
            if start_action.id in server.lock_actions:
                server.lock_actions.remove(start_action.id)

    create = new_action(
        world,
        "create_server",
        server_resources(server),
        t.create_server + restore,
        server=server,
        on_success=created,
        on_error=create_failed,
    )
    if start_after_create:
        start_action = _boot_action(world, server, t.create_server + restore + t.boot)
        next_actions.append(start_action)
    for fw_id in firewalls:
        next_actions.append(
            new_action(
                world,
                "apply_firewall",
                [*server_resources(server), {"id": fw_id, "type": "firewall"}],
                t.firewall_apply,
                lock=False,
            )
        )
    return server, create, next_actions


def _boot_action(world: World, server: SimServer, duration: float) -> SimAction:
    return new_action(
        world,
        "start_server",
        server_resources(server),
        None if server.never_boots else duration,
        server=server,
        on_success=lambda: booted(world, server),
        on_error=lambda: set_status(server, "off"),
    )


def set_status(server: SimServer, status: str) -> None:
    server.status = status


def booted(world: World, server: SimServer) -> None:
    """The server reached `running`: tell listeners, start cloud-init on the first boot."""
    server.status = "running"
    server.rebooting = False
    server.configuring = server.gateway_restarting = False
    server.gateway_stopped = False  # the service is enabled: every boot starts it
    server.boot_count += 1
    if server.gateway_fault is not None and server.gateway_fault_clears_on != "never":
        server.gateway_fault = None
    if server.unreachable and server.unreachable_clears_on == "reboot":
        server.unreachable = False
    first = not server.booted_once
    server.first_boot = first
    server.booted_once = True
    world.emit("booted", server)
    if first:
        preinstalled = TAILSCALE_BINARY in server.disk

        def cloud_init_finished() -> None:
            if not server.deleted:
                server.cloud_init_done = True
                if "tailscale" in (server.user_data or ""):  # the install script ran
                    server.disk[TAILSCALE_BINARY] = b"tailscale"

        t = world.config.timings
        world.schedule(t.cloud_init_seconds(tailscale_installed=preinstalled), cloud_init_finished)


def powered_off(world: World, server: SimServer) -> None:
    server.status = "off"
    server.rebooting = False
    world.emit("powered_off", server)


def poweron(world: World, server: SimServer) -> SimAction:
    t = world.config.timings
    if server.status == "running":
        return new_action(world, "start_server", server_resources(server), 0.5, server=server)
    if world.faults.consume("server_never_boots", server_name=server.name):
        server.never_boots = True
    server.status = "starting"
    return _boot_action(world, server, t.boot)


def poweroff(world: World, server: SimServer) -> SimAction:
    t = world.config.timings
    if server.status == "off":
        return new_action(world, "stop_server", server_resources(server), 0.5, server=server)
    return new_action(
        world,
        "stop_server",
        server_resources(server),
        t.poweroff,
        server=server,
        on_success=lambda: powered_off(world, server),
    )


def shutdown(world: World, server: SimServer) -> SimAction:
    """ACPI shutdown: the action only reports that the signal was sent (hetzner.md 2.5)."""
    t = world.config.timings
    ignored = world.faults.consume("shutdown_ignored", server_name=server.name) is not None
    if random.random() < world.config.shutdown_leaves_on_probability:
        ignored = True

    def signalled() -> None:
        if ignored or server.status != "running":
            return
        server.status = "stopping"

        def down() -> None:
            if not server.deleted and server.status == "stopping":
                powered_off(world, server)

        world.schedule(t.shutdown_power_down, down)

    return new_action(
        world,
        "shutdown_server",
        server_resources(server),
        t.shutdown_action,
        server=server,
        on_success=signalled,
    )


def reboot(world: World, server: SimServer, command: str, duration: float) -> SimAction:
    """`reboot_server` (ACPI) or `reset_server` (hard); an off server simply starts."""
    if server.status == "off":
        server.status = "starting"
    else:
        server.rebooting = True
    return new_action(
        world,
        command,
        server_resources(server),
        duration,
        server=server,
        on_success=lambda: booted(world, server),
        on_error=lambda: setattr(server, "rebooting", False),
    )


def delete_server(world: World, server: SimServer) -> SimAction:
    """Remove the server at once (GET is 404 from now on); the action finishes later."""
    h = world.hetzner
    server.status = "deleting"
    server.deleted = True
    h.servers.pop(server.id, None)
    if h.server_ids_by_name.get(server.name) == server.id:
        del h.server_ids_by_name[server.name]
    for image_id in [i.id for i in h.images.values() if i.bound_to == server.id]:
        del h.images[image_id]
    for fw in h.firewalls.values():
        if server.id in fw.servers:
            fw.servers.remove(server.id)
    world.emit("deleted", server)
    return new_action(
        world,
        "delete_server",
        server_resources(server),
        world.config.timings.delete_server,
        lock=False,
    )
