"""`aura demo` command line."""

from __future__ import annotations

import sys

import click


@click.command("demo")
@click.option("--namespace", default="aura-demo", show_default=True, help="Namespace to use.")
@click.option(
    "--time-scale",
    default=0.05,
    show_default=True,
    type=click.FloatRange(min=0.001, max=1.0),
    help="Sandbox speed: 0.05 makes a 60 s server boot take 3 s.",
)
@click.option(
    "--step-timeout", default=180.0, show_default=True, help="Seconds each step may take."
)
@click.option(
    "--keep", is_flag=True, help="Leave the components and the fleet running; print how to look."
)
def command(namespace: str, time_scale: float, step_timeout: float, keep: bool) -> None:
    """Walk customers through the lifecycle on a local cluster and the sandbox: ACME goes
    checkout → Running → payment failed → Suspended → paid → Running → cancelled → Deleted;
    then Globex signs up (Running) and Initech signs up and misses a payment (Suspended)."""
    from aura_demo.scenario import Options, run

    sys.exit(run(Options(namespace, time_scale, keep, step_timeout)))
