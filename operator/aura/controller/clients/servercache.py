"""A shared, periodically refreshed view of every server the operator manages.

Polling 200 booting servers with one `GET /servers/{id}` each would spend the project's rate
limit on reads. Instead every reader asks this cache, which answers from one paged
`GET /servers?label_selector=aura.dev/managed-by=aura` no older than `max_age`; concurrent
readers that find it stale share a single refresh. Mutations made through the operator are
written in (`remember`, `forget`) so a reader never sees a server "disappear" between its
create and the next list.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from aura.controller.clients.hetzner import HetznerApi, ServerInfo


class ServerCache:
    """Servers labelled as ours, by ID, refreshed at most every `max_age` seconds."""

    def __init__(
        self,
        api: HetznerApi,
        *,
        label_selector: str,
        max_age: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._api = api
        self._selector = label_selector
        self._max_age = max_age
        self._clock = clock
        self._servers: dict[int, ServerInfo] = {}
        self._fetched_at: float | None = None
        self._remembered: dict[int, float] = {}
        self._lock = asyncio.Lock()

    async def _fresh(self, max_age: float | None = None) -> dict[int, ServerInfo]:
        limit = self._max_age if max_age is None else max_age
        async with self._lock:
            now = self._clock()
            if self._fetched_at is None or now - self._fetched_at > limit:
                started = self._clock()
                servers = {s.id: s for s in await self._api.list_servers(self._selector)}
                # A server remembered after this list started may be missing from it.
                for server_id, at in list(self._remembered.items()):
                    if at >= started and server_id in self._servers:
                        servers.setdefault(server_id, self._servers[server_id])
                    else:
                        del self._remembered[server_id]
                self._servers = servers
                self._fetched_at = started
            return self._servers

    async def all(self, max_age: float | None = None) -> list[ServerInfo]:
        return list((await self._fresh(max_age)).values())

    async def get(self, server_id: int, max_age: float | None = None) -> ServerInfo | None:
        """The server with this ID, or None if it is not among ours (any more)."""
        return (await self._fresh(max_age)).get(server_id)

    async def find_by_label(
        self, key: str, value: str, max_age: float | None = None
    ) -> list[ServerInfo]:
        return [s for s in (await self._fresh(max_age)).values() if s.labels.get(key) == value]

    def remember(self, server: ServerInfo) -> None:
        self._servers[server.id] = server
        self._remembered[server.id] = self._clock()

    def forget(self, server_id: int) -> None:
        self._servers.pop(server_id, None)
        self._remembered.pop(server_id, None)
