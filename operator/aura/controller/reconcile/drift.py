"""The fleet-wide drift sweep: one paged server list, as rarely as the budget asks.

Settled Agents read their server from the shared list at any age (`server.find_server`), so
this sweep is what eventually shows them a server changed behind Aura's back in a way their
gateway probe did not reveal (the probe catches a server powered off or deleted within a
health interval, `health.py`). Its period adapts:

- to the fleet: a list costs one call per 50 servers, and the period is chosen so the sweep
  costs `--drift-calls-per-agent-hour` per Agent (0.05 by default: 24 min for 50 servers, and
  for 2,000), within `--drift-interval-min` and `--drift-interval-max`;
- to the project's remaining budget (`RateLimit-*` headers, `clients/ratelimit.py`): below
  half the bucket the period doubles, and a sweep waits until its pages fit above the reserve.

Worst case from a drift to its notice through this path: the period, plus one health interval
for the Agent's next pass to read it (README, "Scale").
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from prometheus_client import Gauge

from aura.controller.clients.ratelimit import Budget
from aura.controller.runtime import Operator
from aura.controller.settings import OperatorConfig

log = logging.getLogger("aura.drift")

PERIOD = Gauge("aura_drift_period_seconds", "Seconds between fleet-wide drift sweeps (now).")
PAGES = Gauge("aura_drift_pages", "Hetzner calls one drift sweep costs (list pages).")


def period(config: OperatorConfig, servers: int, pages: int, budget: Budget | None) -> float:
    """Seconds until the next sweep of a fleet of `servers` (see the module docstring)."""
    per_hour = config.drift_calls_per_agent_hour * max(servers, 1)
    seconds = pages * 3600 / per_hour if per_hour > 0 else config.drift_interval_max
    seconds = min(config.drift_interval_max, max(config.drift_interval_min, seconds))
    if budget is not None and budget.available < (budget.limit - budget.reserve) / 2:
        seconds *= 2  # the project spends its budget elsewhere: look half as often
    return seconds


def current_period(op: Operator) -> float:
    """`period` for the fleet and budget as they are now."""
    budget = op.limiter.budget() if op.limiter is not None else None
    return period(op.config, op.servers.size, op.servers.pages, budget)


async def sweep_forever(op: Operator, active: Callable[[], Awaitable[bool]]) -> None:
    """Refresh the shared server list every `period`; `active()` gates it (peering)."""
    while True:
        pages = op.servers.pages
        wait = current_period(op)
        PERIOD.set(wait)
        PAGES.set(pages)
        await asyncio.sleep(wait)
        try:
            if not await active():
                continue
            if op.limiter is not None:
                short = op.limiter.budget().seconds_for(pages)
                if short > 0:
                    await asyncio.sleep(min(short, wait))
            await op.servers.refresh()
        except Exception as exc:  # the next sweep retries; never let the loop die
            log.warning("drift sweep failed: %s", exc)
