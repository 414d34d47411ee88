"""Running: the gateway's `/readyz` answers ready and its WebSocket handshake completes
(`clients.gateway.probe_gateway`). Flips Healthy (and the phase) both ways.

Called by the change handlers while an Agent comes up and by the timer afterwards. The first
healthy answer ends the provisioning attempt (`attempt.end`). A gateway that fails after it
was healthy is handed to the repair ladder (`repair.py`).
"""

from __future__ import annotations

from aura.controller import conditions
from aura.controller.clients.gateway import Probe, probe_gateway
from aura.controller.conditions import FALSE, TRUE, Reason
from aura.controller.reconcile import attempt, prerequisites, repair
from aura.controller.reconcile.context import DONE, AgentContext, StepResult, Wait


async def ensure_healthy(ctx: AgentContext) -> StepResult:
    """Probe the gateway; Healthy follows the answer, the first healthy one ends the attempt."""
    assert ctx.status.server is not None
    assert ctx.status.server.id is not None
    tailnet_ipv4 = ctx.status.tailscale.ipv4 if ctx.status.tailscale else None
    url = await ctx.op.hosts.gateway_url(
        ctx.status.server.id, tailnet_ipv4, ctx.spec.runtime.gateway_port
    )
    if url:
        token = (await prerequisites.runtime_env(ctx)).get(prerequisites.GATEWAY_TOKEN_KEY)
        probe = await probe_gateway(
            ctx.op.http,
            url,
            token,
            handshake_seconds=ctx.config.health_timeout,
            handshake=ctx.op.handshake,
        )
    else:
        probe = Probe(False, "no gateway address")
    was_healthy = conditions.is_true(ctx.status.conditions, conditions.HEALTHY)
    if probe.ok:
        ctx.set(conditions.HEALTHY, TRUE, Reason.GATEWAY_READY, probe.detail)
        attempt.end(ctx)
        repair.healthy(ctx)
        return DONE
    # Outside a provisioning attempt nothing else would ever act on a gateway that does not
    # answer (e.g. started again after a stop that interrupted its configuration): it is
    # unhealthy, and the repair ladder takes it.
    degraded = (
        was_healthy
        or not attempt.running(ctx)
        or (
            conditions.reason_of(ctx.status.conditions, conditions.HEALTHY)
            == Reason.GATEWAY_UNHEALTHY
        )
    )
    if degraded:
        ctx.op.fleet.probe_failed(ctx.ref.uid, ctx.status.server.id, ctx.now())
        if was_healthy:
            ctx.event("Warning", "Unhealthy", probe.detail)
        ctx.set(conditions.HEALTHY, FALSE, Reason.GATEWAY_UNHEALTHY, probe.detail)
        if not attempt.running(ctx) and await repair.unhealthy(ctx, probe.detail):
            return Wait(0.1, "replacing the server")
    else:
        ctx.set(conditions.HEALTHY, FALSE, Reason.GATEWAY_STARTING, probe.detail)
    return Wait(ctx.config.poll_interval, "gateway not ready")
