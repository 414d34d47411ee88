"""Fleet-wide limits of the repair ladder (process memory, rebuilt after a restart).

Cluster API's MachineHealthCheck stops remediating when too many machines are unhealthy at
once: a fault that hits many Agents together is the operator's or the network's, and
"repairing" every Agent then (rebooting or replacing servers that are fine) turns an outage
into a disaster. `FleetHealing` answers two questions for `reconcile/repair.py`:

- `short_circuited(phases)`: is the share of unhealthy Agents among those that should serve
  (phase Running or Degraded, as last reconciled by this process) above
  `--heal-max-unhealthy-share`? Also exported as `aura_fleet_repairs_paused`.
- `probe_failed(uid, server, at)` / `burst(phases, at)`: the second trigger. Gateway probes
  that fail for Agents across many servers within `BURST_WINDOW` (a minute) also pause repairs,
  even while few Agents are `Degraded` at any one moment (a network that flaps, a probe path
  that breaks everywhere): more than `--heal-max-unhealthy-share` of the Agents that serve or
  failed, and at least `BURST_MIN_SERVERS` servers (two failing gateways in a small fleet are
  the share trigger's business). Failures age out of the window, so repairs resume a
  minute after the failures stop. Exported as `aura_fleet_failing_servers`.
- `take(uid)` / `release(uid)`: at most `--heal-max-concurrent` repairs in flight at once; a
  repair is in flight from its action until the Agent is healthy again or climbs a rung.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

SERVING = frozenset({"Running", "Degraded"})
BURST_WINDOW = 60.0
"""Seconds over which failed gateway probes across servers add up to a fleet fault."""
BURST_MIN_SERVERS = 3
"""Fewest servers whose probes failed within the window that make a burst ("many servers")."""


@dataclass
class FleetHealing:
    max_share: float = 0.4
    max_concurrent: int = 5
    in_flight: set[str] = field(default_factory=set)
    told: set[str] = field(default_factory=set)
    """Agents already sent a `RepairsPaused` Warning in this pause (one Event per pause)."""
    failed_probes: dict[str, tuple[int, datetime]] = field(default_factory=dict)
    """Agent UID -> (server ID, when) of its last failed gateway probe (or missing device)."""

    @staticmethod
    def unhealthy_share(phases: Mapping[str, str]) -> tuple[int, int]:
        """(unhealthy, serving) among the Agents' last phases."""
        serving = [p for p in phases.values() if p in SERVING]
        return sum(1 for p in serving if p == "Degraded"), len(serving)

    def short_circuited(self, phases: Mapping[str, str]) -> bool:
        unhealthy, serving = self.unhealthy_share(phases)
        return serving > 1 and unhealthy / serving > self.max_share

    def probe_failed(self, uid: str, server_id: int, at: datetime) -> None:
        """The gateway of `uid` on `server_id` failed its probe at `at` (outside provisioning)."""
        self.failed_probes[uid] = (server_id, at)

    def burst(self, phases: Mapping[str, str], at: datetime) -> tuple[int, int]:
        """(servers whose probe failed within `BURST_WINDOW` of `at`, Agents that serve or
        failed); forgets failures older than the window."""
        for uid, (_, when) in list(self.failed_probes.items()):
            if (at - when).total_seconds() > BURST_WINDOW:
                del self.failed_probes[uid]
        servers = {server for server, _ in self.failed_probes.values()}
        agents = {uid for uid, p in phases.items() if p in SERVING} | set(self.failed_probes)
        return len(servers), len(agents)

    def pause_reason(self, phases: Mapping[str, str], at: datetime) -> str | None:
        """Why repairs are paused now (either trigger), or None when they may run."""
        if self.short_circuited(phases):
            unhealthy, serving = self.unhealthy_share(phases)
            return f"{unhealthy} of {serving} Agents are unhealthy (over {self.max_share:.0%})"
        failing, agents = self.burst(phases, at)
        if failing >= BURST_MIN_SERVERS and failing / agents > self.max_share:
            return (
                f"gateway probes failed on {failing} servers of {agents} Agents within "
                f"{BURST_WINDOW:.0f}s (over {self.max_share:.0%})"
            )
        return None

    def take(self, uid: str) -> bool:
        if uid in self.in_flight:
            return True
        if len(self.in_flight) >= self.max_concurrent:
            return False
        self.in_flight.add(uid)
        return True

    def release(self, uid: str) -> None:
        self.in_flight.discard(uid)
        self.told.discard(uid)
