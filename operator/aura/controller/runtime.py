"""The per-process state every reconcile shares: configuration, API clients, a clock, memory.

Built once by `aura operator` and handed to kopf as its `memo`. Nothing in here is a source
of truth: after a restart it is rebuilt empty and the reconciles re-derive everything from
the cluster and the clouds. The state itself is split by concern: `ProvisioningSlots` (how
many Agents may provision at once) and `PassMemory` (what the driver keeps per Agent).
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

from aura.configure.base import Configurator
from aura.controller.checkpoints.store import CheckpointStore
from aura.controller.clients.gateway import Handshake, probe_handshake
from aura.controller.clients.gateway_service import GatewayService
from aura.controller.clients.hetzner import HetznerApi
from aura.controller.clients.hosts import HostObserver
from aura.controller.clients.kube import AgentAnnotator, EventSink, SecretStore
from aura.controller.clients.servercache import ServerCache
from aura.controller.clients.tailscale import TailnetApi
from aura.controller.healing_fleet import FleetHealing
from aura.controller.settings import OperatorConfig
from aura.cost.kube import BudgetReader

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The production clock: the current time in UTC."""
    return datetime.now(UTC)


@dataclass
class ProvisioningSlots:
    """At most `limit` Agents provision at once (`--max-concurrent-provisions`); the rest queue,
    first come first served.

    An Agent joins the queue the first time it asks (`take`) and keeps its place while it
    keeps asking (every `--poll-interval`); a free slot goes to the head of the queue, never to
    whoever happens to poll first, so no Agent starves behind later ones. A queued Agent that
    stops asking for `stale_after` seconds (stopped, deleted, adopted a server) loses its place,
    so it cannot block the head. Only `reconcile/attempt.py` takes and releases slots. A slot
    is process memory: after a restart the Agents still provisioning take theirs again on
    their next pass.
    """

    limit: int
    holders: set[str] = field(default_factory=set)
    stale_after: float = 60.0
    clock: Callable[[], float] = time.monotonic
    queue: dict[str, float] = field(default_factory=dict)
    """Queued Agent UIDs in arrival order -> when each last asked."""

    def take(self, uid: str) -> bool:
        """Take a slot for `uid` (True if it holds one now, already or newly)."""
        if uid in self.holders:
            return True
        now = self.clock()
        while self.queue:  # stale entries only matter at the head: drop them there
            head, seen = next(iter(self.queue.items()))
            if now - seen <= self.stale_after or head == uid:
                break
            del self.queue[head]
        self.queue[uid] = now  # a dict keeps insertion order: re-asking keeps the place
        if self.position(uid) > self.limit - len(self.holders):
            return False
        del self.queue[uid]
        self.holders.add(uid)
        return True

    def position(self, uid: str) -> int:
        """1-based place of `uid` in the queue (0: not queued)."""
        for index, queued in enumerate(self.queue, start=1):
            if queued == uid:
                return index
        return 0

    def release(self, uid: str) -> None:
        self.holders.discard(uid)
        self.queue.pop(uid, None)


@dataclass
class PassMemory:
    """What the driver and the server step remember per Agent UID between passes."""

    locks: defaultdict[str, asyncio.Lock] = field(default_factory=lambda: defaultdict(asyncio.Lock))
    busy: set[str] = field(default_factory=set)
    """Agent UIDs whose change handler has not converged yet; the timer leaves them alone."""
    phases: dict[str, str] = field(default_factory=dict)
    """The phase last counted in the `aura_agents` gauge."""
    started: float = field(default_factory=time.monotonic)
    create_attempts: dict[str, float] = field(default_factory=dict)
    """When each Agent last sent `POST /servers`: a lookup before creating again must use a
    server list fetched after it, or a server whose create response was lost is missed."""

    def forget(self, uid: str) -> str | None:
        """Drop everything about `uid`; returns the phase it was counted under."""
        self.busy.discard(uid)
        self.locks.pop(uid, None)
        self.create_attempts.pop(uid, None)
        return self.phases.pop(uid, None)


@dataclass
class Operator:
    """Shared state of one operator process (kopf's `memo`)."""

    config: OperatorConfig
    hetzner: HetznerApi
    servers: ServerCache
    tailnet: TailnetApi
    secrets: SecretStore
    events: EventSink
    hosts: HostObserver
    configurator: Configurator
    http: httpx.AsyncClient
    agents: AgentAnnotator | None = None
    """Pokes Agents waiting for their runtime Secret (`driver.runtime_secret_changed`)."""
    clock: Clock = utc_now
    budgets: BudgetReader | None = None
    """AgentBudgets, read before every server create (the BlockNew gate, `aura.cost.gate`)."""
    handshake: Handshake = probe_handshake
    """The gateway's WebSocket handshake probe (clients/gateway.py)."""
    gateway_service: GatewayService | None = None
    """Starts, stops and restarts an Agent's gateway service (a consistent checkpoint's
    quiesce, the repair ladder's first rung); None: those steps fail with a clear message."""
    memory: PassMemory = field(default_factory=PassMemory)
    slots: ProvisioningSlots = field(init=False)
    fleet: FleetHealing = field(init=False)
    holds: dict[str, str] = field(default_factory=dict)
    """Agent UID -> the checkpoint or restore holding it, set before the Agent's status says
    so: a pass started from an older watch event must not slip a power action in."""
    checkpoints: CheckpointStore | None = None
    """AgentCheckpoint/AgentRestore reads and writes (controller/checkpoints/store.py)."""

    def __post_init__(self) -> None:
        self.slots = ProvisioningSlots(self.config.max_concurrent_provisions)
        self.fleet = FleetHealing(
            self.config.heal_max_unhealthy_share, self.config.heal_max_concurrent
        )
