"""`aura sandbox`: run the simulated APIs until SIGTERM or SIGINT.

Prints exactly one JSON line on stdout once it serves (the keys of `app.READY_KEYS` plus
whatever modules add), logs to stderr, and exits 0 after saving `--state`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from pathlib import Path

import click

from aura_sandbox.app import SandboxRuntime
from aura_sandbox.config import SandboxConfig


async def _serve(config: SandboxConfig) -> None:
    runtime = SandboxRuntime(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    info = await runtime.start()
    sys.stdout.write(json.dumps(info) + "\n")
    sys.stdout.flush()
    await stop.wait()
    await runtime.stop()


@click.command("sandbox")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=0, show_default=True, help="Port; 0 picks a free one.")
@click.option(
    "--state",
    "state_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Load the world from this file and save it back (periodically and on exit).",
)
@click.option(
    "--time-scale",
    default=1.0,
    show_default=True,
    type=click.FloatRange(min=0.0),
    help="Multiply every simulated delay: 0.05 makes a 60 s boot take 3 s.",
)
@click.option("--hetzner-token", help="Accepted Hetzner API token (random by default).")
@click.option(
    "--rate-limit",
    default=3600,
    show_default=True,
    help="Hetzner token bucket size (requests).",
)
@click.option(
    "--rate-limit-refill",
    default=1.0,
    show_default=True,
    help="Hetzner token bucket refill per second.",
)
@click.option(
    "--shutdown-leaves-on",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0.0, 1.0),
    help="Probability that an ACPI shutdown never powers the server down.",
)
@click.option("--stripe-webhook-url", help="Deliver signed Stripe webhook events to this URL.")
@click.option(
    "--stripe-webhook-secret", help="Signing secret of those deliveries (random by default)."
)
@click.option("-v", "--verbose", is_flag=True, help="Log every request at debug level.")
def command(
    host: str,
    port: int,
    state_file: Path | None,
    time_scale: float,
    hetzner_token: str | None,
    rate_limit: int,
    rate_limit_refill: float,
    shutdown_leaves_on: float,
    stripe_webhook_url: str | None,
    stripe_webhook_secret: str | None,
    verbose: bool,
) -> None:
    """Run the simulated Hetzner Cloud, Tailscale and Stripe APIs on one port."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    config = SandboxConfig(
        host=host,
        port=port,
        time_scale=time_scale,
        state_file=state_file,
        rate_limit_capacity=rate_limit,
        rate_limit_refill_per_second=rate_limit_refill,
        shutdown_leaves_on_probability=shutdown_leaves_on,
    )
    if hetzner_token:
        config.hetzner_token = hetzner_token
    config.stripe_webhook_url = stripe_webhook_url
    if stripe_webhook_secret:
        config.stripe_webhook_secret = stripe_webhook_secret
    asyncio.run(_serve(config))
