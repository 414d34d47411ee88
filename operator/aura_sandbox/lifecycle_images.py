"""Snapshots and rebuilds: the image half of the server state machine (see `lifecycle`).

A snapshot copies the disk when `create_image` starts (a point-in-time copy) and takes
`Timings.snapshot_seconds(used GB)`; the image is `creating` meanwhile (and locked: `423`),
then `available` with `image_size` = the used GB. A rebuild replaces the disk at once with the
image's and boots the server afresh when `rebuild_server` ends; restoring a snapshot takes
`Timings.restore_seconds(image_size)` longer than a system image.
"""

from __future__ import annotations

from aura_sandbox import disk
from aura_sandbox.lifecycle import booted, new_action, server_resources, set_status
from aura_sandbox.model import SimAction, SimImage, SimServer
from aura_sandbox.world import World


def create_image(
    world: World,
    server: SimServer,
    *,
    image_type: str,
    description: str | None,
    labels: dict[str, str],
    architecture: str,
    disk_size: float,
) -> tuple[SimImage, SimAction]:
    """Copy the disk now; the image is `available` with its `image_size` once the action,
    which takes longer the more data is used, succeeds (it is removed if the action fails)."""
    h = world.hetzner
    used = disk.used_gb(server.disk, server.disk_base_gb)
    image = SimImage(
        id=h.next_id("image"),
        type=image_type,
        description=description or f"{server.name}-{world.now():%Y%m%d-%H%M%S}",
        created=world.now(),
        created_from={"id": server.id, "name": server.name},
        architecture=architecture,
        os_flavor="ubuntu",
        os_version=None,
        disk_size=disk_size,
        bound_to=server.id if image_type == "backup" else None,
        labels=labels,
        disk=dict(server.disk),
        used_gb=used,
        configured=server.configured,
        openclaw_version=server.openclaw_version,
    )
    h.images[image.id] = image

    def done() -> None:
        image.status = "available"
        image.image_size = used

    def failed() -> None:
        h.images.pop(image.id, None)

    action = new_action(
        world,
        "create_image",
        [*server_resources(server), {"id": image.id, "type": "image"}],
        world.config.timings.snapshot_seconds(used),
        server=server,
        on_success=done,
        on_error=failed,
        outlives_server=True,
    )
    return image, action


def rebuild(world: World, server: SimServer, image_id: int, user_data: str | None) -> SimAction:
    """Replace the disk by `image_id`'s now; the server boots afresh (cloud-init runs again,
    as on a new instance) when `rebuild_server` ends."""
    t = world.config.timings
    restore = disk.apply_image(world, server, image_id)
    if user_data is not None:
        server.user_data = user_data
    server.status = "rebuilding"
    server.rebooting = True
    server.configuring = server.gateway_restarting = False
    server.booted_once = server.cloud_init_done = False
    return new_action(
        world,
        "rebuild_server",
        server_resources(server),
        (restore or t.rebuild_system) + t.boot,
        server=server,
        on_success=lambda: booted(world, server),
        on_error=lambda: set_status(server, "off"),
    )
