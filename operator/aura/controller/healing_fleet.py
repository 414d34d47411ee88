"""Fleet-wide limits of the repair ladder (process memory, rebuilt after a restart).

Cluster API's MachineHealthCheck stops remediating when too many machines are unhealthy at
once: a fault that hits many Agents together is the operator's or the network's, and
"repairing" every Agent then (rebooting or replacing servers that are fine) turns an outage
into a disaster. `FleetHealing` answers two questions for `reconcile/repair.py`:

- `short_circuited(phases)`: is the share of unhealthy Agents among those that should serve
  (phase Running or Degraded, as last reconciled by this process) above
  `--heal-max-unhealthy-share`? Also exported as `aura_fleet_repairs_paused`.
- `take(uid)` / `release(uid)`: at most `--heal-max-concurrent` repairs in flight at once; a
  repair is in flight from its action until the Agent is healthy again or climbs a rung.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

SERVING = frozenset({"Running", "Degraded"})


@dataclass
class FleetHealing:
    max_share: float = 0.4
    max_concurrent: int = 5
    in_flight: set[str] = field(default_factory=set)
    told: set[str] = field(default_factory=set)
    """Agents already sent a `RepairsPaused` Warning in this pause (one Event per pause)."""

    @staticmethod
    def unhealthy_share(phases: Mapping[str, str]) -> tuple[int, int]:
        """(unhealthy, serving) among the Agents' last phases."""
        serving = [p for p in phases.values() if p in SERVING]
        return sum(1 for p in serving if p == "Degraded"), len(serving)

    def short_circuited(self, phases: Mapping[str, str]) -> bool:
        unhealthy, serving = self.unhealthy_share(phases)
        return serving > 1 and unhealthy / serving > self.max_share

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
