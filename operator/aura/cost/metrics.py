"""Prometheus gauges of cost, revenue and budgets (served with the operator's other metrics).

Per-Agent series are labelled by namespace and name and removed when the Agent is gone, so
the cardinality follows the fleet. Amounts are net, in `currency`.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

AGENT_LABELS = ["namespace", "agent", "currency"]
AGENT_MTD = Gauge("aura_agent_cost_month_to_date", "Agent cost this month so far.", AGENT_LABELS)
AGENT_PROJECTED = Gauge(
    "aura_agent_cost_projected_month", "Agent cost projected to month end.", AGENT_LABELS
)
AGENT_HOURLY = Gauge("aura_agent_cost_hourly_rate", "Agent cost per hour now.", AGENT_LABELS)
AGENT_MARGIN = Gauge(
    "aura_agent_margin_month", "Subscription revenue minus projected cost.", AGENT_LABELS
)
FLEET_MTD = Gauge("aura_fleet_cost_month_to_date", "All Agents' cost this month.", ["currency"])
FLEET_PROJECTED = Gauge(
    "aura_fleet_cost_projected_month", "All Agents' cost projected to month end.", ["currency"]
)
FLEET_MARGIN = Gauge(
    "aura_fleet_margin_month", "Revenue minus projected cost over priced Agents.", ["currency"]
)
NEGATIVE_MARGIN = Counter(
    "aura_agent_negative_margin_total", "Times an Agent's margin turned negative.", ["namespace"]
)
NEGATIVE_MARGIN_AGENTS = Gauge(
    "aura_agents_negative_margin", "Agents whose margin is negative now.", ["namespace"]
)
PRICE_REFRESHES = Counter("aura_price_refreshes_total", "Successful GET /pricing refreshes.")
BUDGET_SPEND = Gauge(
    "aura_budget_spend", "AgentBudget spend in its window.", ["namespace", "budget", "currency"]
)
BUDGET_LIMIT = Gauge(
    "aura_budget_limit", "AgentBudget monthly limit.", ["namespace", "budget", "currency"]
)
BUDGET_FIRED = Counter(
    "aura_budget_threshold_fired_total",
    "AgentBudget thresholds that turned active.",
    ["namespace", "budget", "action"],
)
BUDGET_BLOCKED_CREATES = Counter(
    "aura_budget_blocked_creates_total",
    "Server creates held back by a BlockNew threshold.",
    ["namespace"],
)
BUDGET_HIBERNATED = Counter(
    "aura_budget_hibernated_agents_total",
    "Agents an AgentBudget's Hibernate threshold put to sleep.",
    ["namespace", "budget"],
)
