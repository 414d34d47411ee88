"""`FakeHetzner`: the `HetznerApi` Protocol in memory, with Hetzner's rules."""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import replace

from aura.controller import errors
from aura.controller.clients.hetzner import ServerInfo


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
        image: str,
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
        )
        self.servers[server.id] = server
        self.user_data[server.id] = user_data
        if self.lose_create_response:
            self.lose_create_response = False
            raise errors.Retryable("create server: ConnectionError")
        return server

    async def get_server(self, server_id: int) -> ServerInfo:
        self._enter("get_server")
        return self._get(server_id)

    async def list_servers(self, label_selector: str) -> list[ServerInfo]:
        self._enter("list_servers")
        key, _, value = label_selector.partition("=")
        hidden, self.hide_from_next_list = self.hide_from_next_list, set()
        return [
            s for s in self.servers.values() if s.labels.get(key) == value and s.id not in hidden
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
