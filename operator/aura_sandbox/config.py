"""Settings of one sandbox process.

`SandboxConfig` is the single object every API module receives in `setup()`. Other modules may
add fields (with defaults) for their own needs; nothing here reads the environment, so a test
can build any configuration it wants. All delays in `Timings` are *realistic* seconds: the world
multiplies them by `time_scale` when it schedules them, so `time_scale=0.01` turns a 30 s boot
into 0.3 s without changing any other number.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path


def _token(prefix: str, nbytes: int = 24) -> str:
    return prefix + secrets.token_hex(nbytes)


@dataclass
class Timings:
    """Realistic durations, in seconds, before `time_scale` (see hetzner.md section 6)."""

    create_server: float = 5.0
    """`create_server` action: the "hcloud server create" progress bar took 4.7 s."""
    boot: float = 25.0
    """From `starting` to `running` (on create and on poweron)."""
    cloud_init: float = 90.0
    """From first `running` to cloud-init `done`."""
    shutdown_action: float = 0.7
    """The ACPI `shutdown_server` action only sends the signal."""
    shutdown_power_down: float = 15.0
    """From the ACPI signal to `off` (10-30 s in the wild)."""
    poweroff: float = 3.0
    reboot: float = 8.0
    reset: float = 5.0
    create_image: float = 60.0
    """Snapshots take "1-5 minutes depending on the disk size"."""
    delete_server: float = 2.0
    firewall_apply: float = 1.0


@dataclass
class SandboxConfig:
    """Everything a sandbox process needs to know; see the module docstring."""

    host: str = "127.0.0.1"
    port: int = 0
    """0 picks a free port; the chosen one is in the ready line."""
    time_scale: float = 1.0
    state_file: Path | None = None
    """Persist the world here on shutdown (and every `save_interval` seconds), load on start."""
    save_interval: float = 5.0

    hetzner_token: str = field(default_factory=lambda: _token("sandbox-hcloud-", 20))
    hetzner_readonly_token: str = field(default_factory=lambda: _token("sandbox-hcloud-ro-", 16))
    rate_limit_capacity: int = 3600
    """Token bucket size: Hetzner's default is 3600 requests per hour and project."""
    rate_limit_refill_per_second: float = 1.0
    """Real (not time-scaled) refill rate of the bucket."""
    shutdown_leaves_on_probability: float = 0.0
    """Chance that an ACPI `shutdown` succeeds but the server never powers down."""
    timings: Timings = field(default_factory=Timings)

    tailscale_client_id: str = field(default_factory=lambda: "k" + secrets.token_hex(8))
    tailscale_client_secret: str = field(
        default_factory=lambda: "tskey-client-" + secrets.token_hex(24)
    )
    tailscale_tailnet: str = "aura-sandbox.ts.net"
    tailscale_oauth_tags: list[str] = field(default_factory=lambda: ["tag:aura-agent", "tag:aura"])

    stripe_api_key: str = field(default_factory=lambda: _token("sk_test_", 24))
    stripe_webhook_url: str | None = None
    """Where the simulated Stripe delivers signed webhook events; None: no deliveries."""
    stripe_webhook_secret: str = field(default_factory=lambda: _token("whsec_", 24))

    def scaled(self, seconds: float) -> float:
        """`seconds` of simulated time as wall-clock seconds."""
        return seconds * self.time_scale
