"""Prometheus metrics of the operator, served on `--metrics-port`.

Cloud calls are counted per endpoint *template* (`POST /servers`, `GET /servers/{id}`), so
the cardinality stays bounded however many agents exist.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECONCILES = Counter(
    "aura_reconciles_total", "Agent reconciles by trigger and result.", ["trigger", "result"]
)
PHASE_SECONDS = Histogram(
    "aura_phase_duration_seconds",
    "Time an Agent spent in a phase before leaving it.",
    ["phase"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1200, 3600, float("inf")),
)
AGENTS_BY_PHASE = Gauge("aura_agents", "Agents per phase (as last reconciled).", ["phase"])
CLOUD_CALLS = Counter(
    "aura_cloud_api_calls_total", "Calls to cloud APIs.", ["api", "method", "endpoint"]
)
CLOUD_ERRORS = Counter(
    "aura_cloud_api_errors_total", "Failed cloud API calls by error class.", ["api", "error"]
)
RATE_LIMIT_REMAINING = Gauge(
    "aura_hetzner_ratelimit_remaining", "RateLimit-Remaining of the last Hetzner response."
)
RATE_LIMIT_WAIT_SECONDS = Counter(
    "aura_hetzner_ratelimit_wait_seconds_total", "Time requests waited in the shared limiter."
)
ORPHANS_DELETED = Counter("aura_orphans_deleted_total", "Orphaned cloud objects deleted.", ["kind"])
ROLLBACKS = Counter(
    "aura_rollbacks_total",
    "Provisioning attempts rolled back, by the Agent's namespace and the step that failed.",
    ["namespace", "step"],
)
PHASE_SINCE = Gauge(
    "aura_agent_phase_since_timestamp_seconds",
    "When each Agent entered its current phase (Unix time); one series per Agent.",
    ["namespace", "agent", "phase"],
)
REPAIRS = Counter(
    "aura_repairs_total",
    "Repairs of unhealthy Agents by rung (restart, reboot, replace) and result (ok, failed).",
    ["rung", "result"],
)
REPAIRS_PAUSED = Gauge(
    "aura_fleet_repairs_paused",
    "1 while repairs are paused because too many Agents are unhealthy at once, else 0.",
)
UNHEALTHY_SHARE = Gauge(
    "aura_fleet_unhealthy_share", "Share of serving Agents whose gateway is unhealthy (0-1)."
)
FAILING_SERVERS = Gauge(
    "aura_fleet_failing_servers",
    "Servers whose gateway probe failed within the last minute (the fleet short-circuit's "
    "second trigger).",
)
OPERATOR_ACTIVE = Gauge(
    "aura_operator_active",
    "1 while this replica may act (standalone, or the active one under kopf peering), else 0.",
)
