"""The per-process state every reconcile shares: configuration, API clients, a clock, memory.

Built once by `aura operator` and handed to kopf as its `memo`. Nothing in here is a source
of truth: after a restart it is rebuilt empty and the reconciles re-derive everything from
the cluster and the clouds. The state itself is split by concern: `ProvisioningSlots` (how
many Agents may provision at once) and `PassMemory` (what the driver keeps per Agent).
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

from aura.configure.base import Configurator
from aura.controller.checkpoints.store import CheckpointStore
from aura.controller.clients.devicecache import DeviceCache
from aura.controller.clients.gateway import Handshake, probe_handshake
from aura.controller.clients.gateway_service import GatewayService
from aura.controller.clients.hetzner_api import HetznerApi
from aura.controller.clients.hosts import HostObserver
from aura.controller.clients.kube import AgentAnnotator, EventSink, SecretStore
from aura.controller.clients.ratelimit import RateLimiter
from aura.controller.clients.servercache import ServerCache
from aura.controller.clients.tailscale import TailnetApi
from aura.controller.healing_fleet import FleetHealing
from aura.controller.looplag import LoopLag
from aura.controller.settings import OperatorConfig
from aura.cost.kube import BudgetReader
from aura.cost.prices import PriceCache

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The production clock: the current time in UTC."""
    return datetime.now(UTC)


@dataclass
class ProvisioningSlots:
    """At most `limit` Agents provision at once (`--max-concurrent-provisions`); the rest wait
    in one first-come-first-served line, ordered by `order` (the Agent's creation time and
    name, so the order survives a restart).

    Only `reconcile/attempt.py` takes and releases slots. A free slot goes to the head of the
    line, never to an Agent behind it; an Agent that stops asking (deleted, stopped, its
    passes delayed) leaves the line when its `linger` runs out, so it cannot block the rest.
    Slots and the line are process memory: after a restart the Agents still provisioning take
    theirs again on their next pass.
    """

    limit: int
    holders: set[str] = field(default_factory=set)
    waiting: dict[str, tuple[tuple[str, str], float]] = field(default_factory=dict)
    """uid -> (order, monotonic time after which it counts as gone)."""
    finished: deque[float] = field(default_factory=lambda: deque(maxlen=50))
    """When the last attempts ended successfully: the line's observed speed."""
    clock: Callable[[], float] = time.monotonic

    def take(
        self,
        uid: str,
        order: tuple[str, str] | None = None,
        *,
        linger: float = 60.0,
        free: int = -1,
    ) -> int:
        """0 when `uid` holds a slot (already or now), else its 1-based place in the line.
        `free` (>= 0) caps the slots that may be handed out now (the Hetzner budget)."""
        if uid in self.holders:
            return 0
        now = self.clock()
        for gone in [u for u, (_, until) in self.waiting.items() if until < now]:
            del self.waiting[gone]
        self.waiting[uid] = (order or ("", uid), now + linger)
        ahead = sum(1 for key, _ in self.waiting.values() if key < self.waiting[uid][0])
        open_slots = self.limit - len(self.holders)
        if free >= 0:
            open_slots = min(open_slots, free)
        if ahead < open_slots:
            del self.waiting[uid]
            self.holders.add(uid)
            return 0
        return ahead + 1

    def release(self, uid: str, *, succeeded: bool = False) -> None:
        if uid in self.holders and succeeded:
            self.finished.append(self.clock())
        self.holders.discard(uid)
        self.waiting.pop(uid, None)

    def rate(self) -> float | None:
        """Attempts finished per second lately (None until two have)."""
        if len(self.finished) < 2 or self.finished[-1] <= self.finished[0]:
            return None
        return (len(self.finished) - 1) / (self.finished[-1] - self.finished[0])


@dataclass
class PassMemory:
    """What the driver and the server step remember per Agent UID between passes."""

    locks: defaultdict[str, asyncio.Lock] = field(default_factory=lambda: defaultdict(asyncio.Lock))
    busy: set[str] = field(default_factory=set)
    """Agent UIDs whose change handler has not converged yet; the timer leaves them alone."""
    phases: dict[str, str] = field(default_factory=dict)
    """The phase last counted in the `aura_agents` gauge."""
    started: float = field(default_factory=time.monotonic)
    verified: dict[str, float] = field(default_factory=dict)
    """When a failing probe last made us ask Hetzner about the Agent's server (health.py)."""
    create_attempts: dict[str, float] = field(default_factory=dict)
    """When each Agent last sent `POST /servers`: a lookup before creating again must use a
    server list fetched after it, or a server whose create response was lost is missed."""
    probe_tokens: dict[str, tuple[tuple[str, int], str | None]] = field(default_factory=dict)
    """The gateway token a healthy probe last used, keyed by (Secret name, Agent generation):
    a probe of a healthy gateway reads no Secret (health.py)."""

    def forget(self, uid: str) -> str | None:
        """Drop everything about `uid`; returns the phase it was counted under."""
        self.busy.discard(uid)
        self.locks.pop(uid, None)
        self.create_attempts.pop(uid, None)
        self.verified.pop(uid, None)
        self.probe_tokens.pop(uid, None)
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
    loop_lag: LoopLag = field(default_factory=LoopLag)
    """How late the event loop runs (looplag.py; `app.py` samples it, tests set it)."""
    slots: ProvisioningSlots = field(init=False)
    fleet: FleetHealing = field(init=False)
    holds: dict[str, str] = field(default_factory=dict)
    """Agent UID -> the checkpoint or restore holding it, set before the Agent's status says
    so: a pass started from an older watch event must not slip a power action in."""
    checkpoints: CheckpointStore | None = None
    """AgentCheckpoint/AgentRestore reads and writes (controller/checkpoints/store.py)."""
    prices: PriceCache | None = None
    """Hetzner's price list, shared with the cost job: what a hibernation saves per month."""
    limiter: RateLimiter | None = None
    """The Hetzner budget (clients/ratelimit.py): the provisioning line and the drift sweep
    read it; None (unit tests): no budget gate."""
    devices: DeviceCache = field(init=False)
    """The fleet's one shared tailnet device list (clients/devicecache.py)."""

    def __post_init__(self) -> None:
        self.devices = DeviceCache(self.tailnet)
        self.slots = ProvisioningSlots(self.config.max_concurrent_provisions)
        self.fleet = FleetHealing(
            self.config.heal_max_unhealthy_share, self.config.heal_max_concurrent
        )
