"""The values a reconcile pass (and each of its steps) returns: `Done` or `Wait`.

Shared vocabulary of every layer: steps return them, the driver hands them to
`errors.to_kopf`, which maps every outcome (a `Wait` or a classified error) to kopf.

How a `Wait` reaches kopf, and why it scales (one replica, thousands of Agents):

- A change handler's `Wait(delay)` becomes a kopf `TemporaryError(delay=...)`: kopf stores
  the retry time in the Agent's progress annotation, so a wait survives a restart, and the
  Agent comes back after `delay` or at its next change, whichever is first.
- kopf sleeps out that delay inside the Agent's worker. With a worker limit, sleeping Agents
  would hold every worker and Agents that were never touched would queue behind them; so
  the operator runs one worker per Agent (`--worker-limit 0`, the default; settings.py). A
  sleeping worker is an idle asyncio task, and what must be bounded (servers created at
  once, cloud API calls) is bounded where it costs: `ProvisioningSlots` (a FIFO queue) and
  the clients' rate limiters.
- An expected wait is not an error: the log filter (logfilter.py) drops kopf's "failed
  temporarily: waiting: ..." record below DEBUG, and the driver logs a pass at INFO only when
  the phase changes or it fails.
- A timer pass (health, drift) never raises for a wait: it writes status only when a field
  changed (`driver._write_status`), so a fleet at steady state costs the apiserver nothing.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Done:
    """The step's part of the world is as desired; go on."""


@dataclass(frozen=True)
class Wait:
    """Not there yet (booting, joining, ...); come back after `delay` seconds.

    `delay=None` waits for a change instead of a time: the pass ends without a retry and the
    next event about the Agent (a spec change, the Secret it waits for) starts the next one.
    """

    delay: float | None
    reason: str


StepResult = Done | Wait
DONE = Done()
