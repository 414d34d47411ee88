"""Stopped and Suspended: a graceful ACPI shutdown, then a hard poweroff after a timeout.

The disk is kept, and so are the Configured and TailnetJoined facts: powering back on needs
no re-provisioning. The time the shutdown was requested is the ServerReady condition's
lastTransitionTime (it flips from True when the shutdown is sent), so a restarted operator
still knows when to give up waiting.
"""

from __future__ import annotations

from aura.controller import conditions
from aura.controller.conditions import FALSE, Reason
from aura.controller.reconcile.context import DONE, AgentContext, StepResult, Wait
from aura.controller.reconcile.server import find_server, record


async def ensure_powered_off(ctx: AgentContext) -> StepResult:
    server = await find_server(ctx)
    if server is None:
        ctx.status.server = None
        return DONE
    record(ctx, server)
    if server.status == "off":
        ctx.set(
            conditions.SERVER_READY,
            FALSE,
            Reason.POWERED_OFF,
            f"server {server.id} is off (disk kept)",
        )
        return DONE
    shutting_down = (
        conditions.reason_of(ctx.status.conditions, conditions.SERVER_READY) == Reason.SHUTTING_DOWN
    )
    if server.status == "running" and not shutting_down:
        await ctx.op.hetzner.shutdown(server.id)
        ctx.set(
            conditions.SERVER_READY,
            FALSE,
            Reason.SHUTTING_DOWN,
            f"ACPI shutdown sent to server {server.id}",
        )
        ctx.event("Normal", "ShutdownRequested", f"graceful shutdown of server {server.id}")
    elif shutting_down and ctx.since(conditions.SERVER_READY) > ctx.config.shutdown_timeout:
        await ctx.op.hetzner.power_off(server.id)
        ctx.event(
            "Warning",
            "PoweredOff",
            f"server {server.id} still {server.status} after "
            f"{ctx.config.shutdown_timeout:.0f}s: powered off",
        )
    elif not shutting_down:
        ctx.set(conditions.SERVER_READY, FALSE, Reason.SHUTTING_DOWN, f"server is {server.status}")
    return Wait(ctx.config.poll_interval, f"server {server.status}")
