"""The demo's dunning step: an unpaid Agent hibernates (its server deleted, its data in a
checkpoint) and wakes up with its data when the invoice is paid.

Umbrella's price carries the metadata `aura_hibernate_after` (a short grace, so the demo does
not wait three days), and the bridge sweeps for due deadlines every few seconds. Before the
payment fails the demo writes a file on the Agent's disk (the sandbox's admin API plays the
customer's agent); after the wake it reads it back from the new server.
"""

from __future__ import annotations

import secrets

import httpx
from kubernetes_asyncio import client

from aura.models import GROUP, PLURAL, VERSION
from aura_demo.customers import Customer

GRACE = "20s"
"""Umbrella's price metadata `aura_hibernate_after`: suspended for this long, then hibernated."""
MARKER = "home/openclaw/.openclaw/workspace/umbrella-notes.txt"


class DataLost(Exception):
    """The woken Agent's disk does not hold what was written before it hibernated."""


class Memory:
    """Writes a file on an Agent's disk and checks it later, whatever server it is on now."""

    def __init__(self, custom: client.CustomObjectsApi, admin: httpx.AsyncClient) -> None:
        self.custom, self.admin = custom, admin
        self.written: dict[str, bytes] = {}

    async def _server_id(self, customer: Customer) -> int:
        agent = await self.custom.get_namespaced_custom_object(
            GROUP, VERSION, customer.namespace, PLURAL, customer.agent
        )
        return int(agent["status"]["server"]["id"])

    async def remember(self, customer: Customer) -> None:
        """Write a note only this Agent's disk holds."""
        data = f"notes of {customer.label}: {secrets.token_hex(8)}".encode()
        server = await self._server_id(customer)
        response = await self.admin.put(f"/servers/{server}/disk/{MARKER}", content=data)
        response.raise_for_status()
        self.written[customer.agent] = data

    async def recall(self, customer: Customer) -> None:
        """Read the note back from the Agent's current server; DataLost if it differs."""
        server = await self._server_id(customer)
        response = await self.admin.get(f"/servers/{server}/disk/{MARKER}")
        if response.status_code == 404 or response.content != self.written.get(customer.agent):
            raise DataLost(f"server {server} of {customer.agent} lacks the note written before")
        response.raise_for_status()


async def nothing(customer: Customer) -> None:
    """A step where the customer does nothing: time passes (the dunning grace)."""
    del customer
