"""One tailnet device list for the whole fleet, instead of a lookup per Agent.

An Agent waiting for its server to join the tailnet used to ask Tailscale about its own
hostname (and its recorded device ID) every poll: 200 joining Agents made 400 calls per poll.
Every reader now asks this cache, which answers from one `GET /tailnet/-/devices` fetched no
earlier than the reader allows; concurrent readers that find it stale share one fetch.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from aura.controller.clients.tailscale import Device, TailnetApi


class DeviceCache:
    """Every device of the tailnet, listed at most once per reader's `max_age`."""

    def __init__(self, api: TailnetApi, clock: Callable[[], float] = time.monotonic) -> None:
        self._api = api
        self._clock = clock
        self._devices: list[Device] = []
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()

    async def all(self, max_age: float) -> list[Device]:
        """The devices, from a list fetched at most `max_age` seconds before this call."""
        asked = self._clock()
        async with self._lock:
            # "Before this call", not "before now": readers that queued behind a fetch that
            # started after they asked use it instead of fetching again.
            if self._fetched_at is None or self._fetched_at < asked - max_age:
                started = self._clock()
                self._devices = await self._api.list_devices()
                self._fetched_at = started
            return self._devices

    def forget(self, device_id: str) -> None:
        """A device deleted through the operator leaves the cached list at once."""
        self._devices = [d for d in self._devices if d.id != device_id]
