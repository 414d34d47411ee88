"""High availability: which operator replica may act (kopf peering).

With `--peering NAME` every replica joins kopf's mandatory peering: each writes a keep-alive
record (identity, priority, last seen, lifetime) into the `status` of the peering object
(`ClusterKopfPeering NAME`, or `KopfPeering NAME` in the watched namespace with
`--namespace`), and kopf pauses every handler of a replica while a live peer with a higher
(or the same) priority exists. Without `--peering` the operator runs standalone.

kopf only pauses its own handlers. The orphan sweeper runs outside kopf, so `PeeringGate`
asks the same question of the same records before every pass: act only if no *other* live
peer has a priority at least as high as ours (kopf's own rule; with equal priorities kopf
pauses everyone) and the peering object exists (without it mandatory peering stays paused).
Liveness is judged by kopf's own `Peer` (last seen + lifetime), so both answers agree, give or
take one watch event.

Priorities must differ between replicas: `default_priority` derives one from the pod name.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
from typing import Any, Protocol

# kopf exports neither the peer record parser nor the identity type; the same code decides
# kopf's own pausing, so the sweeper's gate cannot disagree with it (kopf is pinned).
from kopf._core.engines.peering import Identity, Peer, detect_own_id

from aura.controller import metrics

log = logging.getLogger("aura.peering")

PRIORITY_MAX = 2**31 - 1


def default_priority(name: str | None = None) -> int:
    """A stable priority in 1..2^31-1 from `name` (default: POD_NAME, else host:pid).

    Pod names are unique among live pods, so two replicas practically never share a priority
    (kopf would pause both); outside a pod, host and process ID keep local replicas apart.
    """
    if name is None:
        name = os.environ.get("POD_NAME") or f"{socket.gethostname()}:{os.getpid()}"
    digest = hashlib.sha256(name.encode()).digest()
    return int.from_bytes(digest[:8], "big") % PRIORITY_MAX + 1


class PeeringReader(Protocol):
    async def peering_records(
        self, name: str, namespace: str | None
    ) -> dict[str, dict[str, Any]] | None:
        """The peering object's `status` (identity -> record); None if it does not exist."""
        ...


def own_identity() -> Identity:
    """This replica's peer identity, as kopf would pick it (POD_ID, else user@host/time/rnd)."""
    return detect_own_id(manual=False)


class PeeringGate:
    """Answers "is this replica the active one?" from the peering object's keep-alives."""

    def __init__(
        self,
        kube: PeeringReader,
        name: str | None,
        namespace: str | None,
        identity: str,
        priority: int,
    ) -> None:
        self._kube: PeeringReader | None = kube if name else None  # None: standalone
        self._name, self._namespace = name or "", namespace
        self._identity, self._priority = identity, priority
        self._active: bool | None = None

    @property
    def where(self) -> str:
        if self._namespace:
            return f"KopfPeering {self._namespace}/{self._name}"
        return f"ClusterKopfPeering {self._name}"

    def blockers(self, records: dict[str, dict[str, Any]]) -> list[str]:
        """Identities of the other live peers whose priority is at least ours."""
        peers = [
            Peer(identity=Identity(key), **value)
            for key, value in records.items()
            if isinstance(value, dict)
        ]
        return [
            str(p.identity)
            for p in peers
            if not p.is_dead and p.identity != self._identity and p.priority >= self._priority
        ]

    async def active(self) -> bool:
        """True in standalone mode; else whether kopf lets this replica act right now."""
        if self._kube is None:
            metrics.OPERATOR_ACTIVE.set(1)
            return True
        records = await self._kube.peering_records(self._name, self._namespace)
        blockers = self.blockers(records) if records is not None else []
        active = records is not None and not blockers
        metrics.OPERATOR_ACTIVE.set(1 if active else 0)
        if active != self._active:
            self._active = active
            if active:
                log.info("active replica in %s: background work resumed", self.where)
            elif records is None:
                log.info("standing by: %s does not exist", self.where)
            else:
                log.info("standing by in %s in favour of %s", self.where, ", ".join(blockers))
        return active
