"""A shared view of every server the operator manages, refreshed as rarely as it can be.

Hetzner's budget (3,600 calls an hour per project, shared with the project's other users) must
not go on reads. Three ways in, from cheapest:

- `get`/`all`/`find_by_label` answer from one paged `GET /servers?label_selector=
  aura.dev/managed-by=aura` (50 servers a page) no older than the reader's `max_age`;
  concurrent readers that find it stale share a single refresh. Settled Agents read it with an
  unbounded age: only the drift sweep (`reconcile/drift.py`) refreshes it for them.
- `poll` serves an Agent waiting for its server to change state (booting, shutting down): one
  list of the servers *in transition* (a status filter: a page or two however large the
  fleet) shared by every poller, and a single `GET /servers/{id}` for a server that left it.
- `check` is one `GET /servers/{id}`: a failing gateway probe puts the power state in question.

Mutations made through the operator are written in (`remember`, `forget`) so a reader never
sees a server "disappear" between its create and the next list.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable

from aura.controller import errors
from aura.controller.clients.hetzner_api import HetznerApi, ServerInfo

PAGE_SIZE = 50
"""Servers per page of a Hetzner list (its maximum `per_page`)."""
TRANSITIONAL = [
    "initializing",
    "starting",
    "stopping",
    "off",
    "deleting",
    "migrating",
    "rebuilding",
]
"""Every server status but `running` (and `unknown`): what `poll` lists."""


class ServerCache:
    """Servers labelled as ours, by ID; see the module docstring."""

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
        self._seen: dict[int, float] = {}  # when each server's state was last read
        self._moving: set[int] = set()  # IDs in the last list of servers in transition
        self._moving_at: float | None = None
        self._moving_lock = asyncio.Lock()

    @property
    def size(self) -> int:
        """Servers known (the fleet size the drift sweep paces itself by)."""
        return len(self._servers)

    @property
    def pages(self) -> int:
        """Calls one full list costs."""
        return max(1, math.ceil(len(self._servers) / PAGE_SIZE))

    async def _fresh(self, max_age: float | None = None) -> dict[int, ServerInfo]:
        limit = self._max_age if max_age is None else max_age
        asked = self._clock()
        async with self._lock:
            # Fetched after "asked - limit" (not "now - limit"): readers that queued behind a
            # refresh use it instead of starting another one.
            if self._fetched_at is None or self._fetched_at < asked - limit:
                started = self._clock()
                servers = {s.id: s for s in await self._api.list_servers(self._selector)}
                # A server remembered after this list started may be missing from it.
                for server_id, at in list(self._remembered.items()):
                    if at >= started and server_id in self._servers:
                        servers.setdefault(server_id, self._servers[server_id])
                    else:
                        del self._remembered[server_id]
                self._servers = servers
                self._seen = {i: max(self._seen.get(i, started), started) for i in servers}
                self._fetched_at = started
            return self._servers

    async def refresh(self) -> None:
        """List every server now (the drift sweep)."""
        await self._fresh(0.0)

    async def all(self, max_age: float | None = None) -> list[ServerInfo]:
        return list((await self._fresh(max_age)).values())

    async def get(self, server_id: int, max_age: float | None = None) -> ServerInfo | None:
        """The server with this ID, or None if it is not among ours (any more)."""
        return (await self._fresh(max_age)).get(server_id)

    async def find_by_label(
        self, key: str, value: str, max_age: float | None = None
    ) -> list[ServerInfo]:
        return [s for s in (await self._fresh(max_age)).values() if s.labels.get(key) == value]

    async def poll(self, server_id: int, max_age: float) -> ServerInfo | None:
        """The server's state read at most `max_age` seconds ago; None when it is gone."""
        asked = self._clock()
        if self._seen.get(server_id, -math.inf) >= asked - max_age:
            return self._servers.get(server_id)
        async with self._moving_lock:
            if self._moving_at is None or self._moving_at < asked - max_age:
                started = self._clock()
                moving = await self._api.list_servers(self._selector, statuses=TRANSITIONAL)
                for server in moving:
                    self._note(server, started)
                self._moving = {s.id for s in moving}
                self._moving_at = started
        if server_id in self._moving and self._seen.get(server_id, -math.inf) >= asked - max_age:
            return self._servers.get(server_id)
        return await self.check(server_id)  # not in transition (any more): read it alone

    async def check(self, server_id: int) -> ServerInfo | None:
        """One `GET /servers/{id}`; None (and forgotten) when it does not exist."""
        started = self._clock()
        try:
            server = await self._api.get_server(server_id)
        except errors.NotFound:
            self.forget(server_id)
            return None
        self._note(server, started)
        return server

    def _note(self, server: ServerInfo, at: float) -> None:
        self._servers[server.id] = server
        self._seen[server.id] = at
        self._remembered[server.id] = at

    def remember(self, server: ServerInfo) -> None:
        self._note(server, self._clock())

    def forget(self, server_id: int) -> None:
        self._servers.pop(server_id, None)
        self._remembered.pop(server_id, None)
        self._seen.pop(server_id, None)
        self._moving.discard(server_id)
