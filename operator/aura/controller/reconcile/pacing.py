"""The provisioning line: which Agent may create its server next, and what the others see.

A burst of Agents (1,000 applied at once) must not spend the project's Hetzner budget faster
than it refills, and must be served first come, first served. Two gates, both in process
memory (`runtime.ProvisioningSlots`, `clients/ratelimit.RateLimiter`):

- at most `--max-concurrent-provisions` attempts run at once, handed out in the order the
  Agents were created (a free slot goes to the head of the line, never past it);
- a new attempt starts only while the Hetzner budget holds, above the reserve left for the
  project's other users, the calls an attempt costs (`CALLS_PER_ATTEMPT`).

Every waiting Agent's `ServerReady` condition says `Queued` with its place in the line and an
estimate of its start, from the line's observed speed and the budget's refill rate.
"""

from __future__ import annotations

import math

from aura.controller import conditions
from aura.controller.clients.ratelimit import Budget
from aura.controller.conditions import UNKNOWN, Reason
from aura.controller.reconcile.context import AgentContext, Wait

CALLS_PER_ATTEMPT = 4
"""Hetzner calls one provisioning attempt costs, rounded up: the create, its share of the
booting-servers polls, the state read when it leaves them (measured: hack/bench/reconcile.py)."""
MAX_QUEUED_DELAY = 60.0
"""The longest a queued Agent waits between passes (the tail of a long line)."""
LINGER = 2 * MAX_QUEUED_DELAY + 30
"""Seconds after its last pass a queued Agent still counts as in the line."""


def take_slot(ctx: AgentContext) -> Wait | None:
    """None when this Agent may provision now; else a Wait, with the Queued condition set."""
    budget = ctx.op.limiter.budget() if ctx.op.limiter is not None else None
    free = -1 if budget is None else max(0, math.floor(budget.available / CALLS_PER_ATTEMPT))
    slots = ctx.op.slots
    order = (ctx.created, f"{ctx.ref.namespace}/{ctx.ref.name}")
    newly = ctx.ref.uid not in slots.holders
    place = slots.take(ctx.ref.uid, order, linger=LINGER, free=free)
    if place == 0:
        if newly and ctx.status.provisioning is not None:
            # The time spent in the line is not the attempt's: its deadline starts now.
            ctx.status.provisioning.started_at = ctx.now()
        return None
    eta = estimate(place, slots.rate(), budget)
    waiting = f"position {place} of {len(slots.waiting)} in the provisioning queue"
    busy = f"{len(slots.holders)} of {slots.limit} provisioning"
    guess = f"start in about {_rounded(eta)}" if eta is not None else "estimate pending"
    if budget is not None and budget.available < CALLS_PER_ATTEMPT:
        busy += ", waiting for the Hetzner rate-limit budget"
    ctx.set(conditions.SERVER_READY, UNKNOWN, Reason.QUEUED, f"{waiting} ({busy}); {guess}")
    # Without an estimate yet, only the head looks again every poll; every `limit` places
    # further back add a poll, so a long line costs tens of passes a second, not hundreds.
    rounds = math.ceil(place / max(slots.limit, 1))
    delay = ctx.config.poll_interval * rounds if eta is None else eta / 2
    return Wait(min(MAX_QUEUED_DELAY, max(ctx.config.poll_interval, delay)), "queued")


def estimate(place: int, rate: float | None, budget: Budget | None) -> float | None:
    """Seconds until the Agent at `place` starts: the slower of the line's observed speed
    (`rate` attempts per second) and the budget's refill for the attempts ahead of it."""
    by_budget = budget.seconds_for(place * CALLS_PER_ATTEMPT) if budget is not None else 0.0
    if rate is None:
        return by_budget if by_budget > 0 else None
    return max(place / rate, by_budget)


def _rounded(seconds: float) -> str:
    """Coarse on purpose: a message that changes on every pass is a status write per pass."""
    if seconds < 60:
        return f"{max(5, 5 * round(seconds / 5))}s"
    if seconds < 3600:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"
