"""Booting: the Agent's server reaches `running`; powered on when it is off.

While an attempt is provisioning, a server that has not reached running within
`--boot-timeout` fails the step (and the attempt rolls back). Outside an attempt (a stopped
Agent started again) the server is simply powered on and waited for.
"""

from __future__ import annotations

from aura.controller import conditions
from aura.controller.conditions import FALSE, TRUE, Reason
from aura.controller.reconcile import attempt, source
from aura.controller.reconcile.context import DONE, AgentContext, StepResult, Wait


async def ensure_server_running(ctx: AgentContext) -> StepResult:
    """The server is `running`: power it on if it is off; time the boot while provisioning."""
    assert ctx.status.server is not None
    assert ctx.status.server.id is not None
    server_id, state = ctx.status.server.id, ctx.status.server.status
    if state == "running":
        ctx.set(conditions.SERVER_READY, TRUE, Reason.RUNNING, f"server {server_id} is running")
        return DONE
    was_ready = conditions.is_true(ctx.status.conditions, conditions.SERVER_READY)
    if state == "off":
        if was_ready:
            ctx.event("Warning", "ServerPoweredOffExternally", f"server {server_id} is off")
        await ctx.op.hetzner.power_on(server_id)
        ctx.set(conditions.SERVER_READY, FALSE, Reason.STARTING, f"powering on server {server_id}")
    elif state in ("initializing", "starting"):
        reason = Reason.CREATING if state == "initializing" else Reason.STARTING
        reason = Reason.WAKING if source.waking(ctx) else reason  # phase Waking until it runs
        ctx.set(conditions.SERVER_READY, FALSE, reason, f"server {server_id} is {state}")
    else:
        ctx.set(conditions.SERVER_READY, FALSE, Reason.STARTING, f"server {server_id} is {state}")
    attempt.give_up_after(
        ctx,
        ctx.config.boot_timeout,
        f"server {server_id} did not reach running within {ctx.config.boot_timeout:.0f}s",
        reason=Reason.SERVER_NEVER_BOOTED,
    )
    return Wait(ctx.config.poll_interval, f"server {state}")
