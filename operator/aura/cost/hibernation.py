"""The budget's Hibernate action (pure): which Agents of its namespace a budget holds asleep.

An active Hibernate threshold holds Agents through the annotation `BUDGET_HOLD` (the budget's
name; the reconcile hibernates an Agent that carries it, `reconcile/hibernate.py`):

1. every stopped and suspended Agent that still has a server (billed in full while off);
2. only with `includeRunning`, running Agents in the threshold's `order` (NewestFirst,
   OldestFirst, CostliestFirst): for a `projected` threshold as many as bring the projection
   under it, for a spend threshold all of them (the spend so far cannot fall, only what
   follows can be saved).

A held Agent stays held while a Hibernate threshold would still be active with every held
Agent awake again (their hourly rates, recorded at hold time in `BUDGET_HOLD_RATE`, to the
window's end): hibernating must not by itself release them, or a projected threshold would
wake and hibernate them in turn. So a raised limit, a removed threshold or a new window
releases them. `desiredState` is never changed: released `running` Agents wake, stopped and
suspended ones stay asleep (as after an automatic hibernation). Nothing is ever deleted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from aura.cost import budget
from aura.cost.budget_models import (
    AgentBudgetSpec,
    AgentBudgetStatus,
    BudgetAction,
    HibernateOrder,
    Threshold,
)

STOPPED_STATES = ("stopped", "suspended")


@dataclass(frozen=True)
class Holds:
    """What to change now: Agents to hold (name -> hourly rate to record) and to release."""

    hold: dict[str, float] = field(default_factory=dict)
    release: list[str] = field(default_factory=list)
    reason: str = ""


def _hours_left(status: AgentBudgetStatus, now: datetime) -> float:
    if status.window_start is None:
        return 0.0
    return max(0.0, (budget.window_end(status.window_start) - now).total_seconds() / 3600)


def _line(spec: AgentBudgetSpec, t: Threshold) -> float:
    return spec.limit * t.percent / 100


def _ordered(agents: list[budget.AgentFacts], order: HibernateOrder) -> list[budget.AgentFacts]:
    if order == HibernateOrder.COSTLIEST_FIRST:
        return sorted(agents, key=lambda a: (-a.hourly_rate, a.name))
    newest = order == HibernateOrder.NEWEST_FIRST
    return sorted(agents, key=lambda a: (a.created, a.name), reverse=newest)


def decide(
    name: str,
    spec: AgentBudgetSpec,
    status: AgentBudgetStatus,
    agents: list[budget.AgentFacts],
    *,
    now: datetime,
) -> Holds:
    """The holds budget `name` adds and releases now (see the module docstring)."""
    spend, projected = status.current_spend, status.projected
    if spend is None or projected is None:
        return Holds()
    hours = _hours_left(status, now)
    held = [a for a in agents if a.held_by == name]
    awake_again = sum((a.held_rate or 0.0) * hours for a in held)
    thresholds = [t for t in spec.thresholds if t.action == BudgetAction.HIBERNATE]

    def figure(t: Threshold) -> float:
        return projected + awake_again if t.projected else spend

    active = [t for t in thresholds if figure(t) >= _line(spec, t)]
    if not active:
        return Holds(release=sorted(a.name for a in held))
    free = [a for a in agents if a.held_by is None and not a.sleeping and a.hourly_rate > 0]
    hold = {a.name: a.hourly_rate for a in free if a.desired in STOPPED_STATES}
    saved = sum(rate * hours for rate in hold.values())
    reason = f"{active[0].percent}% of {spec.limit:.2f} {spec.currency}"
    greedy = next((t for t in active if t.include_running), None)
    if greedy is not None:
        for a in _ordered([a for a in free if a.desired == "running"], greedy.order):
            if greedy.projected and projected - saved < _line(spec, greedy):
                break
            hold[a.name] = a.hourly_rate
            saved += a.hourly_rate * hours
        reason = f"{greedy.percent}% of {spec.limit:.2f} {spec.currency}"
    return Holds(hold=hold, reason=reason)
