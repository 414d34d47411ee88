"""Stopped and Suspended: a graceful ACPI shutdown, then a hard poweroff after a timeout.

The disk is kept, and so are the Configured and TailnetJoined facts: powering back on needs
no re-provisioning (`boot.py`). When the shutdown was sent is `status.shutdownRequestedAt`, so
a restarted operator still knows when to give up waiting and power off.
"""

from __future__ import annotations

from aura.controller import conditions
from aura.controller.conditions import FALSE, Reason
from aura.controller.reconcile.context import DONE, AgentContext, StepResult, Wait
from aura.controller.reconcile.server import find_server, record_server


async def ensure_powered_off(ctx: AgentContext) -> StepResult:
    """The server is off: shutdown sent once, poweroff after `--shutdown-timeout`."""
    server = await find_server(ctx, want="off")
    if server is None:
        ctx.status.server = None
        ctx.status.shutdown_requested_at = None
        ctx.set(
            conditions.SERVER_READY,
            FALSE,
            Reason.NO_SERVER,
            "no server exists; one will be created on start",
        )
        return DONE
    record_server(ctx, server)
    if server.status == "off":
        ctx.status.shutdown_requested_at = None
        ctx.set(
            conditions.SERVER_READY,
            FALSE,
            Reason.POWERED_OFF,
            f"server {server.id} is off (disk kept)",
        )
        return DONE
    requested = ctx.status.shutdown_requested_at
    if requested is None and server.status == "running":
        await ctx.op.hetzner.shutdown(server.id)
        ctx.status.shutdown_requested_at = ctx.now()
        ctx.set(
            conditions.SERVER_READY,
            FALSE,
            Reason.SHUTTING_DOWN,
            f"ACPI shutdown sent to server {server.id}",
        )
        ctx.event("Normal", "ShutdownRequested", f"graceful shutdown of server {server.id}")
    elif requested is not None and ctx.seconds_since(requested) > ctx.config.shutdown_timeout:
        await ctx.op.hetzner.power_off(server.id)
        ctx.event(
            "Warning",
            "PoweredOff",
            f"server {server.id} still {server.status} after "
            f"{ctx.config.shutdown_timeout:.0f}s: powered off",
        )
    elif requested is None:
        # Starting or stopping on its own: wait until it is running (then shut it down) or off.
        ctx.set(conditions.SERVER_READY, FALSE, Reason.SHUTTING_DOWN, f"server is {server.status}")
    return Wait(ctx.config.poll_interval, f"server {server.status}")
