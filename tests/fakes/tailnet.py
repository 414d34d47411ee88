"""`FakeTailnet`: the `TailnetApi` Protocol in memory; keys are single-use."""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import replace

from aura.controller import errors
from aura.controller.clients.tailscale import AuthKey, Device


class FakeTailnet:
    def __init__(self) -> None:
        self.keys: dict[str, AuthKey] = {}
        self.key_tags: dict[str, list[str]] = {}
        self.devices: dict[str, Device] = {}
        self.calls: Counter[str] = Counter()
        self.fail_next: dict[str, list[errors.AuraError]] = {}
        self._ids = itertools.count(1)

    def _enter(self, method: str) -> None:
        self.calls[method] += 1
        queue = self.fail_next.get(method)
        if queue:
            raise queue.pop(0)

    def join(self, key: str, hostname: str) -> Device:
        """What a VM running `tailscale up --auth-key=key` does."""
        key_id = next(k for k, v in self.keys.items() if v.key == key)
        n = next(self._ids)
        device = Device(
            id=f"n{n}CNTRL",
            hostname=hostname,
            addresses=(f"100.64.0.{n}", f"fd7a:115c:a1e0::{n}"),
            tags=tuple(self.key_tags[key_id]),
            authorized=True,
            online=True,
        )
        self.devices[device.id] = device
        del self.keys[key_id]  # single use
        return device

    async def create_auth_key(
        self, *, tags: list[str], description: str, expiry_seconds: int
    ) -> AuthKey:
        self._enter("create_auth_key")
        n = next(self._ids)
        key = AuthKey(id=f"k{n}CNTRL", key=f"tskey-auth-k{n}CNTRL-secret{n:08d}")
        self.keys[key.id] = key
        self.key_tags[key.id] = list(tags)
        return key

    async def delete_auth_key(self, key_id: str) -> None:
        self._enter("delete_auth_key")
        self.keys.pop(key_id, None)

    async def list_devices(self, *, hostname: str | None = None) -> list[Device]:
        self._enter("list_devices")
        return [d for d in self.devices.values() if hostname in (None, d.hostname)]

    async def get_device(self, device_id: str) -> Device:
        self._enter("get_device")
        if device_id not in self.devices:
            raise errors.NotFound(f"device {device_id} not found")
        return self.devices[device_id]

    async def set_device_tags(self, device_id: str, tags: list[str]) -> None:
        self._enter("set_device_tags")
        self.devices[device_id] = replace(await self.get_device(device_id), tags=tuple(tags))

    async def set_device_name(self, device_id: str, name: str) -> None:
        self._enter("set_device_name")
        await self.get_device(device_id)

    async def delete_device(self, device_id: str) -> None:
        self._enter("delete_device")
        if self.devices.pop(device_id, None) is None:
            raise errors.NotFound(f"device {device_id} not found")
