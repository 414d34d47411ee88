"""The fleet-wide cost refresh: every Agent's `status.cost`, the metrics and every budget.

One refresh costs Hetzner at most: `GET /pricing` once a day (`PriceCache`), the shared server
list (`ServerCache`, which the reconciles refresh anyway: usually no extra call) and one
`GET /images?type=snapshot` (checkpoint images) for the whole fleet; never a call per Agent.
It runs every `interval` seconds (at most an hour, so month-to-date follows the hourly
rounding) on the active peering replica only, and writes an Agent's `status.cost` only when
a figure changed.

Budgets are also evaluated on their own watch events (`evaluate_budget`, from the Agents'
recorded histories and the cached prices, no Hetzner call), so a raised limit takes effect
within seconds. A budget's Hibernate thresholds hold Agents asleep through an annotation
(`hibernation.decide`).
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from aura.controller import conditions, naming
from aura.controller.clients.hetzner_api import HetznerApi
from aura.controller.clients.servercache import ServerCache
from aura.cost import budget, hibernation, ledger, metrics, model
from aura.cost.budget_models import BUDGET_KIND, AgentBudgetSpec, AgentBudgetStatus
from aura.cost.kube import CostKube
from aura.cost.prices import PriceCache
from aura.cost.wire import CostStatus, SubscriptionPrice
from aura.hibernation_models import BUDGET_HOLD, BUDGET_HOLD_RATE
from aura.models import KIND, ConditionStatus

log = logging.getLogger("aura.cost")

PROJECT_LIMIT_REASON = conditions.Reason.PROJECT_SERVER_LIMIT
AgentLister = Callable[[str | None], Awaitable[list[dict[str, Any]]]]


def _cost_of(agent: dict[str, Any]) -> CostStatus | None:
    raw = (agent.get("status") or {}).get("cost")
    if not raw:
        return None
    try:
        return CostStatus.model_validate(raw)
    except ValidationError:
        return None  # written by an older release; rebuilt from what Hetzner shows


def _price_of(agent: dict[str, Any]) -> SubscriptionPrice | None:
    raw = ((agent.get("spec") or {}).get("billing") or {}).get("price")
    try:
        return SubscriptionPrice.model_validate(raw) if raw else None
    except ValidationError:
        return None


def _project_limited(agent: dict[str, Any]) -> bool:
    for c in (agent.get("status") or {}).get("conditions") or []:
        if c.get("type") == conditions.SERVER_READY and c.get("reason") == PROJECT_LIMIT_REASON:
            return True
    return False


def facts(agent: dict[str, Any], cost: CostStatus | None) -> budget.AgentFacts:
    meta = agent["metadata"]
    annotations = meta.get("annotations") or {}
    servers = cost.servers if cost else []
    snapshots = cost.snapshots if cost else []
    return budget.AgentFacts(
        name=meta["name"],
        servers=[
            model.ServerLife(
                s.id, s.type, s.location, s.created, s.deleted, s.ipv4, s.outgoing_traffic
            )
            for s in servers
        ],
        snapshots=[
            model.SnapshotLife(x.id, x.image_size_gb, x.created, x.deleted) for x in snapshots
        ],
        project_limit_blocked=_project_limited(agent),
        desired=str((agent.get("spec") or {}).get("desiredState") or "running"),
        created=str(meta.get("creationTimestamp") or ""),
        hourly_rate=(cost.hourly_rate or 0.0) if cost else 0.0,
        sleeping=bool((agent.get("status") or {}).get("hibernation")),
        held_by=annotations.get(BUDGET_HOLD),
        held_rate=_float(annotations.get(BUDGET_HOLD_RATE)),
    )


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None  # edited by hand: counted as free to wake


class CostService:
    """See the module docstring. One per operator process."""

    def __init__(
        self,
        *,
        hetzner: HetznerApi,
        servers: ServerCache,
        prices: PriceCache,
        kube: CostKube,
        list_agents: AgentLister,
        namespace: str | None,
        interval: float,
        wall: Callable[[], datetime],
    ) -> None:
        self.hetzner = hetzner
        self.servers = servers
        self.prices = prices
        self.kube = kube
        self.list_agents = list_agents
        self.namespace = namespace
        self.interval = interval
        self.wall = wall
        self._series: set[tuple[str, str, str]] = set()

    async def refresh(self) -> int:
        """Recompute every Agent and budget; returns how many Agent statuses were written."""
        prices = await self.prices.get()
        if prices is None:
            log.warning("no price list yet: cost figures wait for GET /pricing")
            return 0
        # The shared list at whatever age the drift sweep keeps it (reconcile/drift.py): a
        # refresh of its own every interval would cost Hetzner a page per 50 servers.
        live = await self.servers.all(max_age=math.inf)
        snapshots = await self.hetzner.list_images(naming.MANAGED_SELECTOR)
        agents = await self.list_agents(self.namespace)
        now = self.wall()
        written = 0
        by_namespace: dict[str, list[budget.AgentFacts]] = defaultdict(list)
        seen: set[tuple[str, str, str]] = set()
        fleet: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
        negative: dict[str, int] = defaultdict(int)
        for agent in agents:
            meta = agent["metadata"]
            uid, ns, name = meta.get("uid", ""), meta["namespace"], meta["name"]
            old = _cost_of(agent)
            history = ledger.merge_servers(
                old.servers if old else [],
                [s for s in live if s.labels.get(naming.AGENT_UID) == uid],
                now=now,
            )
            snaps = ledger.merge_snapshots(
                old.snapshots if old else [],
                [x for x in snapshots if x.labels.get(naming.AGENT_UID) == uid],
                now=now,
            )
            new = ledger.compute(history, snaps, prices, _price_of(agent), now=now).status
            if not ledger.same_figures(old, new):
                await self.kube.patch_agent_cost(
                    ns, name, new.model_dump(mode="json", by_alias=True, exclude_none=True)
                )
                written += 1
            await self._watch_margin(agent, old, new)
            key = (ns, name, prices.currency)
            seen.add(key)
            self._set_agent_metrics(key, new)
            totals = fleet[prices.currency]
            totals[0] += new.month_to_date or 0.0
            totals[1] += new.projected_month or 0.0
            totals[2] += new.margin or 0.0
            if new.margin is not None and new.margin < 0:
                negative[ns] += 1
            by_namespace[ns].append(facts(agent, new))
        for gone in self._series - seen:
            for gauge in (
                metrics.AGENT_MTD,
                metrics.AGENT_PROJECTED,
                metrics.AGENT_HOURLY,
                metrics.AGENT_MARGIN,
            ):
                with contextlib.suppress(KeyError):
                    gauge.remove(*gone)
        self._series = seen
        for currency, (mtd, projected, margin) in fleet.items():
            metrics.FLEET_MTD.labels(currency).set(mtd)
            metrics.FLEET_PROJECTED.labels(currency).set(projected)
            metrics.FLEET_MARGIN.labels(currency).set(margin)
        for ns in {a["metadata"]["namespace"] for a in agents}:
            metrics.NEGATIVE_MARGIN_AGENTS.labels(ns).set(negative.get(ns, 0))
        for obj in await self.kube.list_budgets(self.namespace):
            await self._apply_budget(obj, by_namespace[obj["metadata"]["namespace"]], prices)
        return written

    def _set_agent_metrics(self, key: tuple[str, str, str], cost: CostStatus) -> None:
        metrics.AGENT_MTD.labels(*key).set(cost.month_to_date or 0.0)
        metrics.AGENT_PROJECTED.labels(*key).set(cost.projected_month or 0.0)
        metrics.AGENT_HOURLY.labels(*key).set(cost.hourly_rate or 0.0)
        if cost.margin is not None:
            metrics.AGENT_MARGIN.labels(*key).set(cost.margin)

    async def _watch_margin(
        self, agent: dict[str, Any], old: CostStatus | None, new: CostStatus
    ) -> None:
        was = old.margin if old is not None else None
        if new.margin is None or new.margin >= 0 or (was is not None and was < 0):
            return
        metrics.NEGATIVE_MARGIN.labels(agent["metadata"]["namespace"]).inc()
        await self.kube.post_event(
            agent,
            "Warning",
            "NegativeMargin",
            f"projected cost {new.projected_month:.4f} {new.currency} this month exceeds the "
            f"subscription's {new.revenue_month:.4f} (margin {new.margin:.4f}); check the "
            "server type and outgoing traffic",
            kind=KIND,
        )

    async def evaluate_budget(self, obj: dict[str, Any]) -> None:
        """Re-evaluate one budget from the Agents' recorded costs (its watch handler)."""
        prices = await self.prices.get()
        if prices is None:
            return
        ns = obj["metadata"]["namespace"]
        agents = await self.list_agents(ns)
        await self._apply_budget(obj, [facts(a, _cost_of(a)) for a in agents], prices)

    async def _apply_budget(
        self, obj: dict[str, Any], agents: list[budget.AgentFacts], prices: model.PriceList
    ) -> None:
        meta = obj["metadata"]
        ns, name = meta["namespace"], meta["name"]
        try:
            spec = AgentBudgetSpec.model_validate(obj.get("spec") or {})
            old = AgentBudgetStatus.model_validate(obj.get("status") or {})
        except ValidationError as exc:
            log.warning("AgentBudget %s/%s is invalid: %s", ns, name, exc)
            return
        now = self.wall()
        before = old.model_dump(mode="json", exclude={"computed_at"})
        result = budget.evaluate(
            spec, old, agents, prices, now=now, generation=meta.get("generation")
        )
        status = result.status
        _budget_conditions(status, spec, agents, prices.currency, meta.get("generation"))
        metrics.BUDGET_SPEND.labels(ns, name, prices.currency).set(status.current_spend or 0.0)
        metrics.BUDGET_LIMIT.labels(ns, name, spec.currency).set(spec.limit)
        if status.model_dump(mode="json", exclude={"computed_at"}) != before:
            status.computed_at = now.replace(microsecond=0)
            await self.kube.patch_budget_status(
                ns, name, status.model_dump(mode="json", by_alias=True, exclude_none=True)
            )
        for threshold, message in result.fired:
            metrics.BUDGET_FIRED.labels(ns, name, threshold.action.value).inc()
            await self.kube.post_event(
                obj, "Warning", f"Budget{threshold.action.value}", message, kind=BUDGET_KIND
            )
        await self._hold_or_release(obj, hibernation.decide(name, spec, status, agents, now=now))

    async def _hold_or_release(self, obj: dict[str, Any], holds: hibernation.Holds) -> None:
        """Annotate the Agents the budget now holds hibernated, and release the others."""
        ns, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        for agent, rate in sorted(holds.hold.items()):
            hold = {BUDGET_HOLD: name, BUDGET_HOLD_RATE: f"{rate:.6f}"}
            await self.kube.patch_agent_annotations(ns, agent, hold)
            metrics.BUDGET_HIBERNATED.labels(ns, name).inc()
            await self.kube.post_event(
                {"metadata": {"namespace": ns, "name": agent}},
                "Warning",
                "BudgetHibernate",
                f"AgentBudget {name} reached its Hibernate threshold ({holds.reason}): "
                "hibernating (desiredState is unchanged; nothing is deleted)",
                kind=KIND,
            )
        for agent in holds.release:
            await self.kube.patch_agent_annotations(
                ns, agent, {BUDGET_HOLD: None, BUDGET_HOLD_RATE: None}
            )
            await self.kube.post_event(
                {"metadata": {"namespace": ns, "name": agent}},
                "Normal",
                "BudgetReleased",
                f"AgentBudget {name} no longer holds it hibernated: desiredState running wakes it",
                kind=KIND,
            )


def _budget_conditions(
    status: AgentBudgetStatus,
    spec: AgentBudgetSpec,
    agents: list[budget.AgentFacts],
    currency: str,
    generation: int | None,
) -> None:
    """Conditions on the budget: `Blocking`, `ProjectServerLimit`, `CurrencyMatches`."""
    T, F = ConditionStatus.TRUE, ConditionStatus.FALSE
    active = [t for t in status.thresholds if t.active and t.action.value == "BlockNew"]
    conds = status.conditions
    if active:
        why = f"BlockNew at {active[0].percent}%: new and waking Agents wait in Queued"
        conditions.set_condition(conds, "Blocking", T, "BudgetReached", why, generation=generation)
    else:
        conditions.set_condition(
            conds,
            "Blocking",
            F,
            "UnderBudget",
            "no BlockNew threshold is active",
            generation=generation,
        )
    limited = [a.name for a in agents if a.project_limit_blocked]
    if limited:
        message = f"{budget.PROJECT_LIMIT_FIX}; waiting: {', '.join(sorted(limited)[:10])}"
        conditions.set_condition(
            conds, "ProjectServerLimit", T, "ResourceLimitExceeded", message, generation=generation
        )
    else:
        conditions.set_condition(
            conds,
            "ProjectServerLimit",
            F,
            "WithinLimit",
            "no Agent is blocked by it",
            generation=generation,
        )
    if spec.currency != currency:
        conditions.set_condition(
            conds,
            "CurrencyMatches",
            F,
            "CurrencyMismatch",
            f"spec.currency is {spec.currency} but Hetzner bills this project in {currency}: "
            f"set spec.currency to {currency} (the figures are in {currency})",
            generation=generation,
        )
    else:
        conditions.set_condition(
            conds,
            "CurrencyMatches",
            T,
            "CurrencyMatches",
            f"figures in {currency}",
            generation=generation,
        )
