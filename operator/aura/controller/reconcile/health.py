"""Running: the gateway's `/readyz` answers ready and its WebSocket handshake completes
(`clients.gateway.probe_gateway`). Flips Healthy (and the phase) both ways.

Called by the change handlers while an Agent comes up and by the timer afterwards. The first
healthy answer ends the provisioning attempt (`attempt.end`). A gateway that fails after it
was healthy is handed to the repair ladder (`repair.py`).

The probe is also how drift is noticed cheaply: a running Agent's health costs Hetzner
nothing, and only a failing probe puts its server's power state in question. Then (on the
first failure, and again at most every `RECHECK_INTERVALS` health intervals while it keeps
failing) one `GET /servers/{id}` tells whether the server was powered off or deleted behind
our back; the next pass powers it on or replaces it. Worst case from the drift to its Event:
one health interval plus the probe's timeouts (README, "Scale").

A probe that says nothing about the gateway changes nothing: one that never left this process
(its connection pool full), or one that timed out while the operator's own event loop lagged
(looplag.py). The Agent is probed again a health interval later.
"""

from __future__ import annotations

import time

from aura.controller import conditions
from aura.controller.clients.gateway import Probe, probe_gateway
from aura.controller.conditions import FALSE, TRUE, Reason
from aura.controller.reconcile import attempt, prerequisites, repair, replace, server
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
        token = await _probe_token(ctx)
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
    if not probe.ok and (probe.local or (probe.timed_out and ctx.op.loop_lag.lagging())):
        # No evidence about the gateway: keep what was observed and look again later, not at
        # once (an overloaded operator that re-probes at once only lags more; looplag.py).
        lag = ctx.op.loop_lag.worst()
        later = ctx.config.poll_interval if attempt.running(ctx) else ctx.config.health_interval
        return Wait(later, f"probe inconclusive (event loop {lag:.1f}s late): {probe.detail}")
    if probe.ok:
        ctx.set(conditions.HEALTHY, TRUE, Reason.GATEWAY_READY, probe.detail)
        attempt.end(ctx)
        repair.healthy(ctx)
        return DONE
    ctx.op.memory.probe_tokens.pop(ctx.ref.uid, None)  # the next probe reads it again
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
        if (moved := await _server_in_question(ctx, was_healthy)) is not None:
            return moved
        ctx.op.fleet.probe_failed(ctx.ref.uid, ctx.status.server.id, ctx.now())
        if was_healthy:
            ctx.event("Warning", "Unhealthy", probe.detail)
        ctx.set(conditions.HEALTHY, FALSE, Reason.GATEWAY_UNHEALTHY, probe.detail)
        if not attempt.running(ctx) and await repair.unhealthy(ctx, probe.detail):
            return Wait(0.1, "replacing the server")
    else:
        ctx.set(conditions.HEALTHY, FALSE, Reason.GATEWAY_STARTING, probe.detail)
    return Wait(ctx.config.poll_interval, "gateway not ready")


async def _probe_token(ctx: AgentContext) -> str | None:
    """The gateway token for the probe. Read from its Secret once and kept while the probes
    pass, the Secret's name and the Agent's generation unchanged: a GET per probe was a
    sixth of the operator's CPU at steady state. A failing probe drops it (`ensure_healthy`),
    so a rotated token is picked up by the next probe."""
    ref = ctx.spec.runtime.secret_ref
    key = (ref.name if ref else "", ctx.generation)
    cached = ctx.op.memory.probe_tokens.get(ctx.ref.uid)
    if cached is not None and cached[0] == key:
        return cached[1]
    token = (await prerequisites.runtime_env(ctx)).get(prerequisites.GATEWAY_TOKEN_KEY)
    ctx.op.memory.probe_tokens[ctx.ref.uid] = (key, token)
    return token


RECHECK_INTERVALS = 10
"""While a probe keeps failing on a running server, Hetzner is asked again this rarely."""


async def _server_in_question(ctx: AgentContext, was_healthy: bool) -> StepResult | None:
    """Ask Hetzner about a server whose gateway stopped answering (see the module docstring).
    A Wait when it is off or gone (recorded for the next pass), None when it runs."""
    assert ctx.status.server is not None
    assert ctx.status.server.id is not None
    server_id, uid = ctx.status.server.id, ctx.ref.uid
    last = ctx.op.memory.verified.get(uid)
    now = time.monotonic()
    recent = last is not None and now - last < RECHECK_INTERVALS * ctx.config.health_interval
    if recent and not was_healthy:
        return None
    ctx.op.memory.verified[uid] = now
    found = await ctx.op.servers.check(server_id)
    if found is None:
        await replace.replace_vanished_server(ctx, f"server {server_id} was deleted outside Aura")
        return Wait(0.1, "replacing the server")
    if found.status == "running":
        return None
    server.record_server(ctx, found)
    if found.status == "off" and conditions.is_true(ctx.status.conditions, conditions.SERVER_READY):
        ctx.event("Warning", "ServerPoweredOffExternally", f"server {server_id} is off")
    state = f"server {server_id} is {found.status}"
    ctx.set(conditions.SERVER_READY, FALSE, Reason.STARTING, state)
    ctx.set(conditions.HEALTHY, FALSE, Reason.GATEWAY_UNHEALTHY, state)
    return Wait(ctx.config.poll_interval, state)
