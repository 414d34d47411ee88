"""`aura operator`: the command line, its flag tables, and the `OperatorConfig` they build.

Every option also reads an environment variable (shown in `--help`); credentials use the
ecosystem's own names (HCLOUD_TOKEN, TAILSCALE_OAUTH_CLIENT_ID, ...) and can come instead from
a Secret (`--credentials-secret`, read by `credentials.py`). With AURA_SANDBOX_URL set, the
sandbox's simulated configurator and health addresses are used. Logging is set up here and
filtered by `logfilter.py`; everything else starts in `app.main`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import fields
from typing import Any

import click

from aura.controller.settings import OperatorConfig

_DEFAULTS = OperatorConfig()

# (field, help) for the numeric knobs; each becomes --kebab-name / AURA_UPPER_NAME.
_TUNING: list[tuple[str, str]] = [
    ("max_concurrent_provisions", "Agents provisioned at once; the rest wait Queued."),
    ("worker_limit", "kopf workers at once (0: one per Agent, so waits never block others)."),
    ("boot_timeout", "Seconds a new server may take to reach running."),
    ("cloud_init_timeout", "Seconds cloud-init may take after boot."),
    ("configure_timeout", "Seconds one configuration run may take."),
    ("tailnet_join_timeout", "Seconds the device may take to appear in the tailnet."),
    ("provision_deadline", "Seconds a whole provisioning attempt may take."),
    ("shutdown_timeout", "Seconds to wait for a graceful shutdown before poweroff."),
    ("step_retries", "Tries of a failing provisioning step before rolling back."),
    ("retry_backoff", "Base back-off in seconds between tries (doubles each try)."),
    (
        "attempt_backoff_max",
        "Cap in seconds of the back-off before a new provisioning attempt after a transient "
        "failure (quadratic in consecutive failures, with jitter).",
    ),
    ("heal_restart_after", "T1: seconds unhealthy before the gateway service is restarted."),
    ("heal_reboot_after", "T2: seconds still unhealthy after a restart before a reboot."),
    ("heal_replace_after", "T3: seconds still unhealthy after a reboot before a replacement."),
    ("heal_cooldown", "Seconds after an Agent's last repair before a new episode repairs it."),
    (
        "heal_max_unhealthy_share",
        "Share (0-1) of unhealthy Agents above which repairs stop fleet-wide.",
    ),
    ("heal_max_concurrent", "Repairs in flight at once across the fleet."),
    ("poll_interval", "Seconds between checks while waiting (boot, cloud-init, join)."),
    ("health_interval", "Seconds between health/drift checks of each Agent."),
    ("health_timeout", "Seconds a gateway probe (/readyz, then the WebSocket handshake) may take."),
    ("server_list_max_age", "Max age in seconds of the shared server list."),
    ("credentials_retry_delay", "Seconds before retrying after rejected credentials."),
    ("sweep_interval", "Seconds between orphan sweeps."),
    ("cost_interval", "Seconds between fleet cost refreshes (at most 3600)."),
    ("price_max_age", "Seconds a fetched Hetzner price list is used before refreshing it."),
    ("orphan_grace", "Seconds an unclaimed server/device is left alone before deletion."),
    ("auth_key_expiry", "Lifetime in seconds of minted tailnet auth keys."),
    ("rate_limit_max_backoff", "Cap in seconds of the global back-off after 429s."),
    (
        "rate_limit_reserve",
        "Share (0-1) of the Hetzner project's rate-limit bucket left for its other users.",
    ),
    ("tailscale_rate_limit", "Tailscale API requests per second (after a burst of 20)."),
    (
        "drift_calls_per_agent_hour",
        "Hetzner calls per Agent-hour the fleet-wide drift sweep may cost (sets its period).",
    ),
    ("drift_interval_min", "Shortest period in seconds of the fleet-wide drift sweep."),
    (
        "drift_interval_max",
        "Longest period in seconds of the drift sweep (doubled while the budget is low).",
    ),
    ("metrics_port", "Port of the Prometheus /metrics endpoint (0: off)."),
    ("checkpoint_deadline", "Default failureDeadline of an AgentCheckpoint, in seconds."),
    ("checkpoint_poll_interval", "Seconds between checks of an image being created."),
    ("checkpoint_jitter", "Window in seconds that spreads a fleet's scheduled checkpoints."),
    ("checkpoint_schedule_interval", "Seconds between checks of each checkpoint schedule."),
    (
        "hibernate_after",
        "Seconds a stopped or suspended Agent stays so before it hibernates by itself "
        "(0: off; spec.lifecycle.hibernateAfter overrides).",
    ),
    (
        "retain_after_delete",
        "Seconds a deleted Agent's final checkpoint is kept for a returning customer, then "
        "erased (0: off; 2592000 = 30 days).",
    ),
    (
        "peering_lifetime",
        "Seconds a replica's peering keep-alive stays valid (failover time after a crash).",
    ),
]


def _tuning_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    types = {f.name: f.type for f in fields(OperatorConfig)}
    for name, text in reversed(_TUNING):
        kind = int if types[name] in (int, "int") else float
        fn = click.option(
            "--" + name.replace("_", "-"),
            name,
            type=kind,
            default=getattr(_DEFAULTS, name),
            show_default=True,
            envvar="AURA_" + name.upper(),
            show_envvar=True,
            help=text,
        )(fn)
    return fn


def _opt(flag: str, envvar: str, help: str, **kw: Any) -> Callable[..., Any]:
    return click.option(flag, envvar=envvar, show_envvar=True, help=help, **kw)


@click.command("operator")
@_opt("--namespace", "AURA_NAMESPACE", "Watch only this namespace (default: all).")
@_opt("--hcloud-token", "HCLOUD_TOKEN", "Hetzner Cloud API token.", default="")
@_opt(
    "--hcloud-endpoint",
    "HCLOUD_ENDPOINT",
    "Hetzner API URL.",
    default=_DEFAULTS.hcloud_endpoint,
    show_default=True,
)
@_opt(
    "--tailscale-client-id", "TAILSCALE_OAUTH_CLIENT_ID", "Tailscale OAuth client ID.", default=""
)
@_opt(
    "--tailscale-client-secret",
    "TAILSCALE_OAUTH_CLIENT_SECRET",
    "Tailscale OAuth client secret.",
    default="",
)
@_opt(
    "--tailscale-tailnet",
    "TAILSCALE_TAILNET",
    "Tailnet name ('-': the client's own).",
    default="-",
    show_default=True,
)
@_opt(
    "--tailscale-base-url",
    "TAILSCALE_BASE_URL",
    "Tailscale API URL.",
    default=_DEFAULTS.tailscale_base_url,
    show_default=True,
)
@_opt(
    "--credentials-secret",
    "AURA_CREDENTIALS_SECRET",
    "NAMESPACE/NAME of a Secret whose HCLOUD_TOKEN, TAILSCALE_OAUTH_CLIENT_ID and "
    "TAILSCALE_OAUTH_CLIENT_SECRET keys override the options above.",
)
@_opt(
    "--sandbox-url",
    "AURA_SANDBOX_URL",
    "The sandbox's admin URL: use the simulated configurator and health addresses.",
)
@_opt(
    "--default-tags",
    "AURA_DEFAULT_TAGS",
    "Comma-separated tailnet tags for Agents that keep the CRD's default tags.",
    default=",".join(_DEFAULTS.default_tags),
    show_default=True,
)
@_opt(
    "--ssh-user",
    "AURA_SSH_USER",
    "User the configurator logs in as.",
    default="root",
    show_default=True,
)
@_opt(
    "--configurator",
    "AURA_CONFIGURATOR",
    "auto: simulated in sandbox mode, else ansible.",
    type=click.Choice(["auto", "ansible", "simulated"]),
    default="auto",
    show_default=True,
)
@_opt(
    "--tailnet-proxy",
    "AURA_TAILNET_PROXY",
    "HOST:PORT of the Tailscale sidecar's HTTP + SOCKS5 proxy: gateway probes and Ansible's "
    "SSH reach the tailnet through it (userspace networking in a Pod).",
)
@_opt(
    "--tailnet-sidecar-secret",
    "AURA_TAILNET_SIDECAR_SECRET",
    "NAMESPACE/NAME: mint the Tailscale sidecar's auth key at start-up and keep it in this "
    "Secret (key TS_AUTHKEY).",
)
@_opt(
    "--tailnet-sidecar-tag",
    "AURA_TAILNET_SIDECAR_TAG",
    "Tag of the sidecar's auth key (the tailnet policy lets it reach the Agents' tags).",
    default="tag:aura-operator",
    show_default=True,
)
@_opt(
    "--ssh-target-override",
    "AURA_SSH_TARGET_OVERRIDE",
    "HOST:PORT to configure instead of each server's address (testing only).",
)
@_opt(
    "--ansible-playbook",
    "AURA_ANSIBLE_PLAYBOOK",
    "Playbook in AURA_ANSIBLE_DIR (default: the repository's ansible/).",
    default="site.yml",
    show_default=True,
)
@_opt(
    "--ansible-extra-vars",
    "AURA_ANSIBLE_EXTRA_VARS",
    "JSON object of extra variables for every configuration run.",
    default="{}",
)
@_opt(
    "--liveness",
    "AURA_LIVENESS",
    "kopf liveness endpoint URL, e.g. http://0.0.0.0:8080/healthz (default: off).",
)
@_opt(
    "--peering",
    "AURA_PEERING",
    "kopf peering name: replicas elect one active replica through the ClusterKopfPeering "
    "of this name (with --namespace: the KopfPeering in that namespace), which must exist. "
    "Default: standalone, a single replica.",
)
@_opt(
    "--priority",
    "AURA_PRIORITY",
    "This replica's peering priority; the highest live one acts. Must differ between "
    "replicas. Default: derived from POD_NAME.",
    type=click.IntRange(0, 2**31 - 1),
)
@_opt(
    "--shard",
    "AURA_SHARD",
    "Serve only the Agents labelled aura.dev/shard=SHARD (and their checkpoints and restores). "
    "Default: the default shard, every Agent without that label; it also runs the fleet-wide "
    "orphan sweep and cost refresh. Give each shard its own --peering name.",
)
@_tuning_options
@_opt(
    "--log-format",
    "AURA_LOG_FORMAT",
    "Log format.",
    type=click.Choice(["json", "text"]),
    default="json",
    show_default=True,
)
@_opt("--log-level", "AURA_LOG_LEVEL", "Log level.", default="INFO", show_default=True)
def command(
    namespace: str | None,
    liveness: str | None,
    peering: str | None,
    priority: int | None,
    shard: str | None,
    credentials_secret: str | None,
    default_tags: str,
    ansible_extra_vars: str,
    log_format: str,
    log_level: str,
    **options: Any,
) -> None:
    """Run the operator that reconciles Agents (cluster from KUBECONFIG or in-cluster)."""
    from aura.controller.logfilter import KopfNoise
    from aura.logs import configure_logging

    configure_logging(json_format=log_format == "json", level=log_level.upper())
    for handler in logging.getLogger().handlers:
        handler.addFilter(KopfNoise(logging.getLogger().getEffectiveLevel()))
    # httpx logs every request (each gateway probe) at INFO: nothing per probe at the default.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    from aura.controller.peering import default_priority

    if priority is None:
        priority = default_priority() if peering else 0
    if not 0 <= options["rate_limit_reserve"] < 1:
        raise click.BadParameter(
            "must be a share of the bucket in [0, 1), e.g. 0.1 for a tenth",
            param_hint="--rate-limit-reserve",
        )
    if options["tailscale_rate_limit"] <= 0:
        raise click.BadParameter(
            "must be a positive number of requests per second, e.g. 5",
            param_hint="--tailscale-rate-limit",
        )
    config = OperatorConfig(
        namespace=namespace or None,
        liveness=liveness or None,
        peering=peering or None,
        priority=priority,
        shard=_shard(shard),
        default_tags=tuple(t.strip() for t in default_tags.split(",") if t.strip()),
        sandbox_url=options.pop("sandbox_url") or None,
        ssh_target_override=options.pop("ssh_target_override") or None,
        tailnet_proxy=_tailnet_proxy(options.pop("tailnet_proxy")),
        tailnet_sidecar_secret=_sidecar_secret(options.pop("tailnet_sidecar_secret")),
        ansible_extra_vars=_json_object(ansible_extra_vars),
        **options,
    )
    from aura.controller.app import main

    asyncio.run(main(config, credentials_secret))


def _shard(value: str | None) -> str | None:
    if not value:
        return None
    from aura.controller.shards import validate

    try:
        return validate(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--shard") from None


def _tailnet_proxy(value: str | None) -> str | None:
    if not value:
        return None
    from aura.configure.proxy import parse_proxy

    try:
        parse_proxy(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--tailnet-proxy") from None
    return value


def _sidecar_secret(value: str | None) -> str | None:
    if not value:
        return None
    from aura.controller.sidecar_key import parse_secret_ref

    try:
        parse_secret_ref(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--tailnet-sidecar-secret") from None
    return value


def _json_object(text: str) -> dict[str, object]:
    try:
        value = json.loads(text or "{}")
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--ansible-extra-vars") from None
    if not isinstance(value, dict):
        raise click.BadParameter("must be a JSON object", param_hint="--ansible-extra-vars")
    return value
