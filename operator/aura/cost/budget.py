"""An AgentBudget's figures and thresholds (pure: facts and time in, status out).

The spend is the Agents' cost over the budget's window (from the reset day, UTC, to now),
computed with the same model as `status.cost`; the projection adds, for every Agent, what its
live resources cost until the window ends. A threshold is *active* while its figure (the
spend, or the projection with `projected: true`) is at or above its share of the limit; it
*fires* when it turns active, which stamps `lastFired` and triggers its action once.

What a `Hibernate` threshold holds asleep is decided by `hibernation.decide`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from aura.cost import model
from aura.cost.budget_models import (
    AgentBudgetSpec,
    AgentBudgetStatus,
    BudgetAction,
    Threshold,
    ThresholdStatus,
)

PROJECT_LIMIT_FIX = (
    "Hetzner refused a server: the project's server limit is reached "
    "(resource_limit_exceeded). Delete unused servers in the project or ask Hetzner to raise "
    "the limit (Cloud Console > project > Limits > Request limit increase)"
)


@dataclass(frozen=True)
class AgentFacts:
    """What a budget needs of one Agent in its namespace."""

    name: str
    servers: list[model.ServerLife]
    snapshots: list[model.SnapshotLife]
    project_limit_blocked: bool = False
    desired: str = "running"
    created: str = ""
    """metadata.creationTimestamp (RFC 3339 sorts as text)."""
    hourly_rate: float = 0.0
    sleeping: bool = False
    """Hibernating or hibernated already (status.hibernation)."""
    held_by: str | None = None
    """The budget holding it hibernated (annotation BUDGET_HOLD), if any."""
    held_rate: float | None = None


@dataclass(frozen=True)
class Evaluation:
    status: AgentBudgetStatus
    fired: list[tuple[Threshold, str]] = field(default_factory=list)
    """Thresholds that turned active now, with the message for their Event."""


def window_start(now: datetime, reset_day: int) -> datetime:
    """The start (00:00 UTC of the reset day) of the budget window containing `now`."""
    this_month = model.month_start(now).replace(day=reset_day)
    if now >= this_month:
        return this_month
    previous = model.month_start(model.month_start(now) - timedelta(days=1))
    return previous.replace(day=reset_day)


def window_end(start: datetime) -> datetime:
    return model.next_month_start(start).replace(day=start.day)


def figures(
    agents: list[AgentFacts], prices: model.PriceList, *, start: datetime, now: datetime
) -> tuple[float, float]:
    """(spend so far, projection to the window's end) over all `agents`."""
    end = window_end(start)
    spend = projected = 0.0
    for a in agents:
        spend += model.window_cost(a.servers, a.snapshots, prices, start=start, until=now)
        projected += model.window_cost(a.servers, a.snapshots, prices, start=start, until=end)
    return spend, projected


def _threshold_message(t: Threshold, value: float, limit: float, currency: str) -> str:
    what = "projected to month end" if t.projected else "spent"
    text = f"{value:.2f} {currency} {what} is {t.percent}% or more of the {limit:.2f} limit"
    if t.action == BudgetAction.BLOCK_NEW:
        return text + ": new and waking Agents wait in Queued"
    if t.action == BudgetAction.HIBERNATE:
        running = f", then running ones ({t.order.value})" if t.include_running else ""
        return text + f": stopped and suspended Agents hibernate{running}"
    return text


def evaluate(
    spec: AgentBudgetSpec,
    old: AgentBudgetStatus,
    agents: list[AgentFacts],
    prices: model.PriceList,
    *,
    now: datetime,
    generation: int | None,
) -> Evaluation:
    """The budget's new status and the thresholds that fired at `now`."""
    start = window_start(now, spec.reset_day)
    spend, projected = figures(agents, prices, start=start, now=now)
    previous = {(t.percent, t.action): t for t in old.thresholds}
    statuses: list[ThresholdStatus] = []
    fired: list[tuple[Threshold, str]] = []
    for t in spec.thresholds:
        value = projected if t.projected else spend
        active = value >= spec.limit * t.percent / 100
        before = previous.get((t.percent, t.action))
        message = _threshold_message(t, value, spec.limit, spec.currency) if active else None
        last_fired = before.last_fired if before is not None else None
        if active and (before is None or not before.active):
            last_fired = now.replace(microsecond=0)
            fired.append((t, message or ""))
        statuses.append(
            ThresholdStatus(
                percent=t.percent,
                action=t.action,
                active=active,
                last_fired=last_fired,
                message=message,
            )
        )
    blocking = any(s.active and s.action == BudgetAction.BLOCK_NEW for s in statuses)
    status = AgentBudgetStatus(
        currency=prices.currency,
        current_spend=round(spend, 4),
        projected=round(projected, 4),
        percent=round(100 * spend / spec.limit, 2),
        window_start=start,
        blocking=blocking,
        computed_at=old.computed_at,
        observed_generation=generation,
        thresholds=statuses,
        conditions=[c.model_copy() for c in old.conditions],
    )
    return Evaluation(status=status, fired=fired)


def blocks_new(spec: AgentBudgetSpec, status: AgentBudgetStatus) -> str | None:
    """Why this budget holds new servers back, or None; decided from the *current* spec and
    the last computed figures, so a raised limit unblocks before the next evaluation."""
    if status.current_spend is None:
        if any(t.action == BudgetAction.BLOCK_NEW for t in spec.thresholds):
            return "its spend has not been computed yet"
        return None
    for t in spec.thresholds:
        if t.action != BudgetAction.BLOCK_NEW:
            continue
        value = status.projected if t.projected else status.current_spend
        if value is not None and value >= spec.limit * t.percent / 100:
            what = "projected" if t.projected else "spent"
            return (
                f"{value:.2f} {spec.currency} {what} reached its BlockNew threshold "
                f"({t.percent}% of {spec.limit:.2f})"
            )
    return None
