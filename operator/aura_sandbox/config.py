"""Settings of one sandbox process.

`SandboxConfig` is the single object every API module receives in `setup()`. Other modules may
add fields (with defaults) for their own needs; nothing here reads the environment, so a test
can build any configuration it wants. All delays in `Timings` (the one table, in `clock`) are
*realistic* seconds: the world multiplies them by `time_scale` when it schedules them, so
`time_scale=0.01` turns a 60 s boot into 0.6 s without changing any other number.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path

from aura_sandbox.clock import Timings

__all__ = ["SandboxConfig", "Timings"]


def _token(prefix: str, nbytes: int = 24) -> str:
    return prefix + secrets.token_hex(nbytes)


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
