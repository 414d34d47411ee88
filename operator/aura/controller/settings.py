"""Operator configuration (from `aura operator` flags and the environment) and kopf settings.

`OperatorConfig` is plain data built once by the CLI. `configure_kopf` applies the kopf
settings the design relies on: our own finalizer name, progress kept in annotations only (so
`status` stays entirely ours and the CRD schema needs no `status.kopf`), and no automatic
posting of log lines as Events (we post the Events people should see ourselves).

kopf's annotations live under their own prefix, `kopf.aura.dev/`: kopf leaves every annotation
under its storage prefix out of the object's essence, so with the prefix `aura.dev` a change of
`aura.dev/retry` (or `aura.dev/runtime-secret-version`) would fire no handler at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import kopf

from aura.controller import shards
from aura.models import DEFAULT_TAGS

FINALIZER = "aura.dev/finalizer"
KOPF_PREFIX = "kopf.aura.dev"


@dataclass(frozen=True)
class OperatorConfig:
    """Everything `aura operator` can be told; durations in seconds."""

    hcloud_token: str = field(default="", repr=False)
    hcloud_endpoint: str = "https://api.hetzner.cloud/v1"
    tailscale_client_id: str = ""
    tailscale_client_secret: str = field(default="", repr=False)
    tailscale_tailnet: str = "-"
    tailscale_base_url: str = "https://api.tailscale.com"
    credentials_source: str = "environment"
    """Where the credentials came from, e.g. "Secret aura-system/aura-credentials"."""
    sandbox_url: str | None = None
    namespace: str | None = None
    default_tags: tuple[str, ...] = DEFAULT_TAGS
    ssh_user: str = "root"
    configurator: str = "auto"  # auto | ansible | simulated
    ssh_target_override: str | None = None
    """HOST:PORT to configure instead of the server's public address (tests only)."""
    tailnet_proxy: str | None = None
    """HOST:PORT of the tailnet sidecar's HTTP + SOCKS5 proxy (aura/configure/proxy.py): gateway
    probes and Ansible's SSH go through it. None: connect directly."""
    tailnet_sidecar_secret: str | None = None
    """NAMESPACE/NAME of the Secret to keep the sidecar's auth key in (sidecar_key.py)."""
    tailnet_sidecar_tag: str = "tag:aura-operator"
    ansible_playbook: str = "site.yml"
    ansible_extra_vars: dict[str, object] = field(default_factory=dict)
    """Extra variables for every configuration run (e.g. ansible_python_interpreter)."""

    max_concurrent_provisions: int = 20
    worker_limit: int = 0
    """kopf workers at once; 0: one per Agent (a waiting Agent sleeps in its worker)."""
    boot_timeout: float = 600.0
    cloud_init_timeout: float = 900.0
    configure_timeout: float = 1800.0
    tailnet_join_timeout: float = 300.0
    provision_deadline: float = 900.0
    shutdown_timeout: float = 120.0
    step_retries: int = 3
    retry_backoff: float = 5.0
    attempt_backoff_max: float = 300.0
    """Cap of the back-off before a new provisioning attempt after a transient failure."""
    heal_restart_after: float = 60.0
    """T1: seconds a Running Agent's gateway is unhealthy before its service is restarted."""
    heal_reboot_after: float = 180.0
    """T2: seconds still unhealthy after the restart before the server is rebooted."""
    heal_replace_after: float = 300.0
    """T3: seconds still unhealthy after the reboot before the server is replaced."""
    heal_cooldown: float = 900.0
    """Seconds after an Agent's last repair before a new episode may repair it again."""
    heal_max_unhealthy_share: float = 0.4
    """Above this share of unhealthy Agents, repairs stop (the fault is ours or the network's)."""
    heal_max_concurrent: int = 5
    """Repairs in flight at once across the fleet."""
    poll_interval: float = 5.0
    health_interval: float = 30.0
    health_timeout: float = 5.0
    server_list_max_age: float = 5.0
    credentials_retry_delay: float = 300.0
    sweep_interval: float = 300.0
    cost_interval: float = 300.0
    price_max_age: float = 86400.0
    orphan_grace: float = 600.0
    auth_key_expiry: int = 3600
    rate_limit_max_backoff: float = 60.0
    rate_limit_reserve: float = 0.1
    """Share of the Hetzner project's rate-limit bucket left for its other users."""
    tailscale_rate_limit: float = 5.0
    """Tailscale API requests per second (after a burst of 20): its limits are unpublished."""
    drift_calls_per_agent_hour: float = 0.05
    """What the fleet-wide drift sweep may cost per Agent (reconcile/drift.py)."""
    drift_interval_min: float = 300.0
    drift_interval_max: float = 3600.0
    metrics_port: int = 0
    # Checkpoints (controller/checkpoints/)
    checkpoint_deadline: float = 1800.0
    checkpoint_poll_interval: float = 15.0
    checkpoint_jitter: float = 3600.0
    checkpoint_schedule_interval: float = 60.0
    hibernate_after: float = 0.0
    """Seconds a stopped or suspended Agent waits before it hibernates by itself (0: never);
    an Agent's spec.lifecycle.hibernateAfter overrides it."""
    retain_after_delete: float = 0.0
    """Seconds a deleted Agent's final checkpoint is kept for its customer (0: no final one)."""

    liveness: str | None = None
    """kopf's liveness endpoint URL, e.g. http://0.0.0.0:8080/healthz (None: off)."""
    peering: str | None = None
    """kopf peering name: mandatory peering when set, standalone (one replica) when None."""
    priority: int = 0
    """This replica's kopf peering priority; the highest live one acts (see peering.py)."""
    peering_lifetime: int = 60
    """Seconds a replica's peering keep-alive stays valid: the failover time after a crash."""
    shard: str | None = None
    """The `aura.dev/shard` label value this operator serves; None: the default shard, Agents
    without the label (shards.py)."""

    @property
    def sandbox(self) -> bool:
        return bool(self.sandbox_url)

    @property
    def hcloud_token_source(self) -> str:
        return f"HCLOUD_TOKEN ({self.credentials_source})"

    @property
    def tailscale_source(self) -> str:
        return (
            f"TAILSCALE_OAUTH_CLIENT_ID / TAILSCALE_OAUTH_CLIENT_SECRET ({self.credentials_source})"
        )


def configure_kopf(settings: kopf.OperatorSettings, config: OperatorConfig, **_: Any) -> None:
    """Apply the kopf settings described in the module docstring."""
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=KOPF_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=KOPF_PREFIX, key="last-handled-configuration"
    )
    # kopf would post handler log lines as Events; ours are posted explicitly (clients/kube.py).
    settings.posting.enabled = False
    # A wait sleeps in its Agent's worker: with a limit, waiting Agents would starve the
    # Agents not yet touched (outcomes.py). Concurrency is bounded by the provisioning slots.
    settings.queueing.worker_limit = config.worker_limit or None
    settings.watching.server_timeout = 300
    settings.networking.error_backoffs = [1, 2, 5, 10]
    settings.peering.lifetime = config.peering_lifetime
    shards.apply(settings, config.shard)
