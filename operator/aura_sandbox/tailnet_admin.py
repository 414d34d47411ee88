"""The tailnet's admin views (`GET /admin/world`, `/admin/tailscale/{devices,keys,joins}`):
counts, every device with the server it runs on, every key without its secret and why it is
invalid, and recent join attempts. Read-only."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from aura_sandbox.tailnet_devices import DeviceStore
from aura_sandbox.tailnet_enrolment import Enrolment
from aura_sandbox.tailnet_keys import KeyStore
from aura_sandbox.tailnet_model import rfc3339


def summary(
    now: datetime, keys: KeyStore, store: DeviceStore, enrolment: Enrolment
) -> dict[str, int]:
    """Counts for `GET /admin/world`."""
    devices = store.devices.values()
    return {
        "devices": len(devices),
        "devices_connected": sum(d.connected for d in devices),
        "keys_valid": sum(k.invalid_reason(now) is None for k in keys.keys.values()),
        "joins_pending": len(enrolment.pending),
    }


def devices_summary(store: DeviceStore) -> list[dict[str, Any]]:
    """Every device, as the API renders it (all fields) plus the server it runs on."""
    return [
        d.to_api(all_fields=True) | {"serverId": d.server_id, "serverName": d.server_name}
        for d in store.devices.values()
    ]


def keys_summary(now: datetime, keys: KeyStore) -> list[dict[str, Any]]:
    """Every key ever created, without secrets, with why it is invalid (if it is)."""
    return [
        k.to_api(now) | {"owner": k.owner, "uses": k.uses, "invalidReason": k.invalid_reason(now)}
        for k in keys.keys.values()
    ]


def joins_summary(enrolment: Enrolment) -> list[dict[str, Any]]:
    """Recent join attempts: which servers joined, are joining, or why they never will."""
    return [asdict(j) | {"at": rfc3339(j.at)} for j in enrolment.joins]
