"""The per-process state every reconcile shares: configuration, API clients, caches, locks.

Built once by `aura operator` and handed to kopf as its `memo`. Nothing in here is a source
of truth: after a restart it is rebuilt empty and the reconciles re-derive everything from
the cluster and the clouds.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from dataclasses import dataclass, field

import httpx

from aura.configure.base import Configurator
from aura.controller.clients.hetzner import HetznerApi
from aura.controller.clients.hosts import HostObserver
from aura.controller.clients.kube import EventSink, SecretStore
from aura.controller.clients.servercache import ServerCache
from aura.controller.clients.tailscale import TailnetApi
from aura.controller.settings import OperatorConfig
from aura.cost.kube import BudgetReader


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
    locks: defaultdict[str, asyncio.Lock] = field(default_factory=lambda: defaultdict(asyncio.Lock))
    busy: set[str] = field(default_factory=set)
    """Agent UIDs whose change handler has not converged yet; the timer leaves them alone."""
    provisioning: set[str] = field(default_factory=set)
    """Agent UIDs holding one of the `max_concurrent_provisions` slots."""
    phases: dict[str, str] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    budgets: BudgetReader | None = None
    """AgentBudgets, read before every create (the BlockNew gate, `aura.cost.gate`)."""
    create_attempts: dict[str, float] = field(default_factory=dict)
    """When each Agent last sent `POST /servers`: a lookup before creating again must use a
    server list fetched after it, or a server whose create response was lost is missed."""

    def take_provisioning_slot(self, uid: str) -> bool:
        if uid in self.provisioning:
            return True
        if len(self.provisioning) >= self.config.max_concurrent_provisions:
            return False
        self.provisioning.add(uid)
        return True

    def release_provisioning_slot(self, uid: str) -> None:
        self.provisioning.discard(uid)
