"""`FakeHetzner`: the `HetznerApi` Protocol in memory, with Hetzner's rules."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from aura.controller import errors
from aura.controller.clients.hetzner_api import ImageInfo, ServerInfo


class FakeHetzner:
    """Servers by ID; names unique; `fail_next[method]` raises scripted errors once each."""

    def __init__(self) -> None:
        self.servers: dict[int, ServerInfo] = {}
        self.user_data: dict[int, str] = {}
        self.calls: Counter[str] = Counter()
        self.fail_next: dict[str, list[errors.AuraError]] = {}
        self.reboots: list[int] = []
        self.lose_create_response = False
        self.hide_from_next_list: set[int] = set()  # an eventually consistent list
        self._ids = itertools.count(1000)
        self.pricing: dict[str, Any] = {"currency": "EUR", "server_types": [], "primary_ips": []}
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        self.images: dict[int, ImageInfo] = {}
        self.rebuilt: list[tuple[int, int]] = []  # (server, image)
        self.lose_image_response = False
        self.image_disk_gb = 40.0
        self.image_size_gb = 1.5
        self.server_images: dict[int, str | int] = {}  # server ID -> the image it was created from

    def _enter(self, method: str) -> None:
        self.calls[method] += 1
        queue = self.fail_next.get(method)
        if queue:
            raise queue.pop(0)

    def _get(self, server_id: int) -> ServerInfo:
        if server_id not in self.servers:
            raise errors.NotFound(f"server {server_id} not found")
        return self.servers[server_id]

    def set_status(self, server_id: int, status: str) -> None:
        self.servers[server_id] = replace(self.servers[server_id], status=status)

    async def create_server(
        self,
        *,
        name: str,
        server_type: str,
        location: str,
        image: str | int,
        labels: dict[str, str],
        user_data: str,
    ) -> ServerInfo:
        self._enter("create_server")
        if any(s.name == name for s in self.servers.values()):
            raise errors.AlreadyExists(f"server name {name} is already used")
        server = ServerInfo(
            id=next(self._ids),
            name=name,
            status="initializing",
            labels=dict(labels),
            ipv4="198.51.100.7",
            ipv6="2001:db8::/64",
            location=location,
            server_type=server_type,
            created=self.clock(),
            outgoing_traffic=0,
        )
        self.servers[server.id] = server
        self.server_images[server.id] = image
        self.user_data[server.id] = user_data
        if self.lose_create_response:
            self.lose_create_response = False
            raise errors.Retryable("create server: ConnectionError")
        return server

    async def get_server(self, server_id: int) -> ServerInfo:
        self._enter("get_server")
        return self._get(server_id)

    async def list_servers(
        self, label_selector: str, statuses: list[str] | None = None
    ) -> list[ServerInfo]:
        self._enter("list_servers")
        hidden, self.hide_from_next_list = self.hide_from_next_list, set()
        return [
            s
            for s in self.servers.values()
            if _matches(s.labels, label_selector)
            and s.id not in hidden
            and (statuses is None or s.status in statuses)
        ]

    async def power_on(self, server_id: int) -> None:
        self._enter("power_on")
        self._get(server_id)
        self.set_status(server_id, "starting")

    async def shutdown(self, server_id: int) -> None:
        self._enter("shutdown")
        self._get(server_id)
        self.set_status(server_id, "stopping")

    async def power_off(self, server_id: int) -> None:
        self._enter("power_off")
        self._get(server_id)
        self.set_status(server_id, "off")

    async def reboot(self, server_id: int) -> None:
        self._enter("reboot")
        self._get(server_id)
        self.reboots.append(server_id)

    async def delete_server(self, server_id: int) -> None:
        self._enter("delete_server")
        self._get(server_id)
        del self.servers[server_id]

    async def get_pricing(self) -> dict[str, Any]:
        self._enter("get_pricing")
        return self.pricing

    # Snapshot images: `create_image` starts `creating`; `finish_images()` makes them available.
    async def create_image(
        self, server_id: int, *, description: str, labels: dict[str, str]
    ) -> ImageInfo:
        self._enter("create_image")
        self._get(server_id)
        image = ImageInfo(
            id=next(self._ids),
            status="creating",
            labels=dict(labels),
            disk_size=self.image_disk_gb,
            created_from=server_id,
        )
        self.images[image.id] = image
        if self.lose_image_response:
            self.lose_image_response = False
            raise errors.Retryable("create image: ConnectionError")
        return image

    def finish_images(self) -> None:
        for image in list(self.images.values()):
            if image.status == "creating":
                done = replace(image, status="available", image_size=self.image_size_gb)
                self.images[image.id] = done

    async def get_image(self, image_id: int) -> ImageInfo:
        self._enter("get_image")
        if image_id not in self.images:
            raise errors.NotFound(f"image {image_id} not found")
        return self.images[image_id]

    async def list_images(self, label_selector: str) -> list[ImageInfo]:
        self._enter("list_images")
        return [i for i in self.images.values() if _matches(i.labels, label_selector)]

    async def update_server(self, server_id: int, *, name: str, labels: dict[str, str]) -> None:
        self._enter("update_server")
        server = self._get(server_id)
        self.servers[server_id] = replace(server, name=name, labels=dict(labels))

    async def update_image_labels(self, image_id: int, labels: dict[str, str]) -> None:
        self._enter("update_image_labels")
        image = await self.get_image(image_id)
        self.images[image_id] = replace(image, labels=dict(labels))

    async def delete_image(self, image_id: int) -> None:
        self._enter("delete_image")
        if image_id not in self.images:
            raise errors.NotFound(f"image {image_id} not found")
        del self.images[image_id]

    async def rebuild_server(
        self, server_id: int, image_id: int, user_data: str | None = None
    ) -> int:
        self._enter("rebuild_server")
        if user_data is not None:
            self.user_data[server_id] = user_data
        self._get(server_id)
        await self.get_image(image_id)
        self.rebuilt.append((server_id, image_id))
        self.set_status(server_id, "running")
        return next(self._ids)

    async def action_status(self, action_id: int) -> str:
        self._enter("action_status")
        return "success"


def _matches(labels: dict[str, str], selector: str) -> bool:
    """Equality terms joined by commas: all we use."""
    for term in selector.split(","):
        key, _, value = term.partition("=")
        if labels.get(key) != value:
            return False
    return True
