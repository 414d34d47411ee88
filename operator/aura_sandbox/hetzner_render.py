"""Render world objects in the Hetzner wire format (the spec's response schemas).

Kept apart from the handlers so every response of a kind has one shape. Deliberate choices:
`public_net.ipv4.id`/`ipv6.id` are always sent (hcloud-python indexes them, hetzner.md 2.3),
`datacenter` is still sent (the spec copy marks it required), images carry both `deprecated`
and `deprecation` (hetzner.md 2.14). `server()` embeds the static catalog parts as
`fast_json.fragment` placeholders: encode it with `fast_json.dumps`, not `json.dumps`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aura_sandbox import catalog, lifecycle
from aura_sandbox.fast_json import fragment
from aura_sandbox.model import SimAction, SimFirewall, SimImage, SimServer, SimSshKey
from aura_sandbox.world import World


def ts(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def action(world: World, a: SimAction) -> dict[str, Any]:
    return {
        "id": a.id,
        "command": a.command,
        "status": a.status,
        "progress": lifecycle.progress(world, a),
        "started": ts(a.started),
        "finished": ts(a.finished),
        "resources": a.resources,
        "error": a.error,
    }


def image(world: World, i: SimImage) -> dict[str, Any]:
    return {
        "id": i.id,
        "type": i.type,
        "status": i.status,
        "name": None,
        "description": i.description,
        "image_size": i.image_size,
        "disk_size": i.disk_size,
        "created": ts(i.created),
        "created_from": i.created_from,
        "bound_to": i.bound_to,
        "os_flavor": i.os_flavor,
        "os_version": i.os_version,
        "rapid_deploy": False,
        "protection": {"delete": i.protection_delete},
        "deprecated": None,
        "deprecation": None,
        "deleted": None,
        "labels": i.labels,
        "architecture": i.architecture,
    }


def image_by_id(world: World, image_id: int | None) -> dict[str, Any] | None:
    if image_id is None:
        return None
    for system in catalog.SYSTEM_IMAGES:
        if system["id"] == image_id:
            return system
    snapshot = world.hetzner.images.get(image_id)
    return image(world, snapshot) if snapshot else None


def server(world: World, s: SimServer) -> dict[str, Any]:
    st = catalog.SERVER_TYPE_BY_NAME[s.server_type]
    prices = world.hetzner.pricing
    ipv4: dict[str, Any] | None = (
        {"id": s.ipv4_id, "ip": s.ipv4, "blocked": False, "dns_ptr": f"static.{s.ipv4}.clients"}
        if s.ipv4
        else None
    )
    ipv6: dict[str, Any] | None = (
        {"id": s.ipv6_id, "ip": s.ipv6, "blocked": False, "dns_ptr": []} if s.ipv6 else None
    )
    return {
        "id": s.id,
        "name": s.name,
        "status": s.status,
        "created": ts(s.created),
        "public_net": {
            "ipv4": ipv4,
            "ipv6": ipv6,
            "floating_ips": [],
            "firewalls": [{"id": fw, "status": "applied"} for fw in s.firewalls],
        },
        "private_net": [],
        "server_type": fragment(prices.server_type_fragment(s.server_type)),
        "datacenter": fragment(f"datacenter:{s.location}"),
        "location": fragment(f"location:{s.location}"),
        "image": image_by_id(world, s.image_id),
        "iso": None,
        "rescue_enabled": False,
        "locked": s.locked,
        "backup_window": None,
        "outgoing_traffic": s.outgoing_traffic,
        "ingoing_traffic": s.ingoing_traffic,
        "included_traffic": prices.included_traffic(s.location),
        "protection": {"delete": s.protection_delete, "rebuild": s.protection_rebuild},
        "labels": s.labels,
        "volumes": [],
        "load_balancers": [],
        "primary_disk_size": st["disk"],
        "placement_group": None,
    }


def ssh_key(k: SimSshKey) -> dict[str, Any]:
    return {
        "id": k.id,
        "name": k.name,
        "fingerprint": k.fingerprint,
        "public_key": k.public_key,
        "labels": k.labels,
        "created": ts(k.created),
    }


def firewall(f: SimFirewall) -> dict[str, Any]:
    applied: list[dict[str, Any]] = [{"type": "server", "server": {"id": sid}} for sid in f.servers]
    applied += [
        {"type": "label_selector", "label_selector": {"selector": sel}, "applied_to_resources": []}
        for sel in f.selectors
    ]
    return {
        "id": f.id,
        "name": f.name,
        "labels": f.labels,
        "created": ts(f.created),
        "rules": f.rules,
        "applied_to": applied,
    }
