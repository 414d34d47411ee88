"""Devices of the simulated tailnet as the API manages them: find, list with filters, delete,
authorize, retag.

Devices are found by `nodeId` or by the legacy numeric `id`. List filters match a top-level
property exactly (booleans as `true`/`false`) or, for list properties, by membership
(`tags=a&tags=b`: both tags). How devices come to exist is `tailnet_enrolment`'s concern.
"""

from __future__ import annotations

import logging
from typing import Any

from aura_sandbox.tailnet_model import MSG_NO_DEVICE, Device, Principal, TailnetError
from aura_sandbox.tailnet_policy import TagPolicy
from aura_sandbox.tailnet_timers import Timers

log = logging.getLogger(__name__)


class DeviceStore:
    def __init__(self, policy: TagPolicy, timers: Timers) -> None:
        self.policy = policy
        self.timers = timers
        self.devices: dict[str, Device] = {}

    def find_device(self, device_id: str) -> Device:
        """The device with this `nodeId` or legacy numeric `id`; 404 otherwise."""
        device = self.devices.get(device_id)
        if device is None:
            device = next((d for d in self.devices.values() if d.id == device_id), None)
        if device is None:
            raise TailnetError(404, MSG_NO_DEVICE)
        return device

    def list_devices(self, filters: dict[str, list[str]]) -> list[Device]:
        """Devices matching every filter: exact match on a top-level property (booleans as
        `true`/`false`), membership for list properties (`tags=a&tags=b`: both tags)."""
        result = []
        for device in self.devices.values():
            rendered = device.to_api(all_fields=True)
            if all(_matches(rendered, k, vs) for k, vs in filters.items()):
                result.append(device)
        return result

    def delete_device(self, device_id: str) -> None:
        device = self.find_device(device_id)
        self.remove(device, "deleted through the API")

    def set_authorized(self, device_id: str, authorized: bool) -> None:
        self.find_device(device_id).authorized = authorized

    def set_tags(self, principal: Principal, device_id: str, tags: list[str]) -> None:
        device = self.find_device(device_id)
        self.policy.check_caller(principal, tags)
        device.tags = list(dict.fromkeys(tags))
        device.key_expiry_disabled = device.key_expiry_disabled or bool(tags)

    def set_name(self, device_id: str, name: str, dns_suffix: str) -> None:
        """`POST /device/{id}/name`: the MagicDNS name (FQDN or base name; empty resets it to
        the OS hostname). The OS `hostname` is the machine's and does not change."""
        device = self.find_device(device_id)
        base = name.removesuffix("." + dns_suffix) if name else device.hostname
        if "." in base or not base:
            raise TailnetError(400, f"name {name!r} is not a base name or a name in {dns_suffix}")
        if base != device.name.split(".", 1)[0] and base in self.taken_labels():
            raise TailnetError(409, f"name {base!r} is taken by another device")
        device.name = f"{base}.{dns_suffix}"

    def remove(self, device: Device, why: str) -> None:
        """Forget `device` and its pending timers."""
        self.devices.pop(device.node_id, None)
        self.timers.cancel(("gc", device.node_id))
        self.timers.cancel(("reconnect", device.node_id))
        log.info("tailnet: device %s (%s) removed: %s", device.node_id, device.name, why)

    def of_server(self, server_id: int) -> Device | None:
        """The device running on the Hetzner server `server_id`, if any."""
        return next((d for d in self.devices.values() if d.server_id == server_id), None)

    def taken_labels(self) -> set[str]:
        return {d.name.split(".", 1)[0] for d in self.devices.values()}

    def used_ipv4(self) -> set[str]:
        return {d.addresses[0] for d in self.devices.values()}


def _matches(rendered: dict[str, Any], key: str, values: list[str]) -> bool:
    """One device-list filter. Unknown keys are ignored (an assumption: no source says)."""
    if key not in rendered:
        return True
    actual = rendered[key]
    if isinstance(actual, dict):
        raise TailnetError(400, f"cannot filter on {key}: it is not a simple field")
    for value in values:
        if isinstance(actual, list):
            if value not in actual:
                return False
        elif isinstance(actual, bool):
            if value.lower() != str(actual).lower():
                return False
        elif str(actual) != value:
            return False
    return True
