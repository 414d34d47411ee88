"""The orphan sweeper: deletes cloud objects whose Agent no longer exists.

Finalizers make orphans rare, but not impossible: an Agent force-deleted with its finalizer
stripped, a create whose response was lost *after* the Agent was deleted, a device that
joined after its rollback. Every `--sweep-interval` one pass reads our servers (by the
`managed-by` label, from the shared list the drift sweep refreshes, `drift.py`: the orphan
sweep itself costs Hetzner nothing) and lists our devices (hostname prefix plus tags),
and deletes those that no Agent claims, once they have been unclaimed for `--orphan-grace`
(so a server created a moment before its Agent shows up in our list is never touched).
An operator restricted to one namespace only sweeps objects labelled with that namespace.

Drift on existing Agents (a server deleted or powered off behind our back) is found by each
Agent's own timer pass (a failing probe, or the same shared list), and converged there.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable
from typing import Any

from aura.controller import errors, metrics, naming
from aura.controller.clients.kube import AgentRef
from aura.controller.runtime import Operator

log = logging.getLogger("aura.sweeper")


class Sweeper:
    """Remembers when each unclaimed object was first seen; deletes it after the grace."""

    def __init__(self, op: Operator, clock: Callable[[], float] = time.monotonic) -> None:
        self._op = op
        self._clock = clock
        self._first_seen: dict[tuple[str, str], float] = {}

    def _expired(self, key: tuple[str, str], now: float) -> bool:
        first = self._first_seen.setdefault(key, now)
        return now - first >= self._op.config.orphan_grace

    async def sweep(self, agents: list[dict[str, Any]]) -> int:
        """One pass over `agents` (the Agent objects that exist); returns objects deleted."""
        namespace = self._op.config.namespace
        refs = [
            AgentRef(a["metadata"]["namespace"], a["metadata"]["name"], a["metadata"]["uid"])
            for a in agents
        ]
        uids = {r.uid for r in refs}
        hostnames = {n for r in refs for n in naming.server_names(r)} | {
            a.get("spec", {}).get("tailscale", {}).get("hostname") for a in agents
        }
        # A device is also claimed by the Agent that recorded it (a warm-pool server's device
        # keeps the pool member's OS hostname after it was handed to an Agent).
        device_ids = {
            (a.get("status", {}).get("tailscale") or {}).get("deviceId") for a in agents
        } - {None}
        now = self._clock()
        seen: set[tuple[str, str]] = set()
        deleted = 0
        for server in await self._op.servers.all(max_age=math.inf):
            if server.labels.get(naming.AGENT_UID) in uids:
                continue
            if namespace and server.labels.get(naming.AGENT_NAMESPACE) != namespace:
                continue
            key = ("server", str(server.id))
            seen.add(key)
            if self._expired(key, now):
                log.warning(
                    "deleting orphaned server %s (%s): its Agent is gone", server.id, server.name
                )
                with contextlib.suppress(errors.NotFound):
                    await self._op.hetzner.delete_server(server.id)
                self._op.servers.forget(server.id)
                metrics.ORPHANS_DELETED.labels("server").inc()
                deleted += 1
        prefixes = naming.name_prefixes(namespace)
        ours = set(self._op.config.default_tags)
        for device in await self._op.tailnet.list_devices():
            if device.id in device_ids or device.hostname in hostnames:
                continue
            if not device.hostname.startswith(prefixes):
                continue
            if not ours & set(device.tags):
                continue
            key = ("device", device.id)
            seen.add(key)
            if self._expired(key, now):
                log.warning(
                    "deleting orphaned tailnet device %s (%s): its Agent is gone",
                    device.id,
                    device.hostname,
                )
                with contextlib.suppress(errors.NotFound):
                    await self._op.tailnet.delete_device(device.id)
                metrics.ORPHANS_DELETED.labels("device").inc()
                deleted += 1
        for key in set(self._first_seen) - seen:
            del self._first_seen[key]
        return deleted
