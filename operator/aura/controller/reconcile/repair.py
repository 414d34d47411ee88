"""The repair ladder for a Running Agent whose gateway is unhealthy (called by `health.py`).

    unhealthy for T1 (--heal-restart-after)      -> restart the gateway service
    still unhealthy T2 after it (--heal-reboot-after)   -> reboot the server
    still unhealthy T3 after it (--heal-replace-after)  -> replace the server (a new
                                                           provisioning attempt), from the
                                                           newest ready checkpoint, blank if none

A rung that cannot act (the host is unreachable, no restart adapter) is recorded as failed and
the next rung is due at once (CAPH #2237: skip a step that cannot help). After the replace
rung the ladder stops: a replacement that is unhealthy again within the cooldown is not repaired
until the cooldown has passed; then the ladder starts over from the restart (no replace loop).

Memory is `status.healing` (explicit fields with timestamps): when the episode began, the last
rung and when it acted, the Agent's last repair (the cooldown counts from it) and the last ten
repairs. An episode ends when the gateway is healthy again. A new episode within
`--heal-cooldown` of the last repair does not repeat that repair's rung: it starts one rung
higher (CAPH #1983: a reboot that "healed" but failed again soon must not loop).

`spec.healing` may turn the ladder off or stop it at a rung. Fleet limits
(`healing_fleet.FleetHealing`): no repair while more than `--heal-max-unhealthy-share` of the
serving Agents are unhealthy, or gateway probes failed on more than that share of servers
within a minute (the condition `RepairsPaused` and a Warning Event on each affected Agent,
the gauge `aura_fleet_repairs_paused`), and at most
`--heal-max-concurrent` repairs in flight. Every repair is an Event and a record.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta

from aura.controller import conditions, errors, metrics
from aura.controller.clients.gateway_service import GatewayState, set_gateway
from aura.controller.conditions import FALSE, TRUE, Reason
from aura.controller.reconcile import replace, secrets
from aura.controller.reconcile.configure import connection_target
from aura.controller.reconcile.context import AgentContext
from aura.healing_models import RUNGS, HealingPolicy, HealingStatus, RepairRecord, Rung

FAILED = "failed: "
HISTORY = 10


def _following(rung: Rung) -> Rung | None:
    index = RUNGS.index(rung) + 1
    return RUNGS[index] if index < len(RUNGS) else None


def _wait_after(ctx: AgentContext, rung: Rung) -> float:
    """How long the rung *before* `rung` is given to help."""
    config = ctx.config
    return {
        Rung.RESTART: config.heal_restart_after,
        Rung.REBOOT: config.heal_reboot_after,
        Rung.REPLACE: config.heal_replace_after,
    }[rung]


def next_rung(ctx: AgentContext, h: HealingStatus) -> tuple[Rung, datetime] | None:
    """The rung to act next in this episode and when it is due (None: the ladder is done)."""
    assert h.unhealthy_since is not None
    if h.rung is None:
        first = Rung.RESTART
        recent = h.last_repair_at is not None and ctx.seconds_since(h.last_repair_at) < (
            ctx.config.heal_cooldown
        )
        if recent and h.repairs:
            following = _following(h.repairs[-1].rung)
            if following is None:
                # A replacement that fails again within the cooldown is not replaced again
                # (a replace loop); once the cooldown has passed, the ladder starts over.
                return None
            first = following
        return first, h.unhealthy_since + timedelta(seconds=ctx.config.heal_restart_after)
    rung = _following(h.rung)
    if rung is None:
        return None
    assert h.rung_at is not None
    failed = bool(h.repairs) and h.repairs[-1].result.startswith(FAILED)
    wait = 0.0 if failed else _wait_after(ctx, rung)
    return rung, h.rung_at + timedelta(seconds=wait)


def healthy(ctx: AgentContext) -> None:
    """The gateway answers: the episode (if any) is over."""
    h = ctx.status.healing
    ctx.op.fleet.release(ctx.ref.uid)
    _resume(ctx, "the gateway is healthy again")
    if h is None or h.unhealthy_since is None:
        return
    if h.rung is not None:
        took = ctx.seconds_since(h.unhealthy_since)
        ctx.event("Normal", "Repaired", f"gateway healthy again after {h.rung.value} ({took:.0f}s)")
    h.unhealthy_since, h.rung, h.rung_at = None, None, None


def _resume(ctx: AgentContext, message: str) -> None:
    """RepairsPaused turns False (only where it was ever set)."""
    if conditions.is_true(ctx.status.conditions, conditions.REPAIRS_PAUSED):
        ctx.set(conditions.REPAIRS_PAUSED, FALSE, Reason.REPAIRS_RESUMED, message)


async def unhealthy(ctx: AgentContext, detail: str) -> bool:
    """The gateway of a Running Agent fails its probe: act the rung that is due, if any.
    Returns True when the server was replaced (the pass must end)."""
    h = ctx.status.healing or HealingStatus()
    ctx.status.healing = h
    if h.unhealthy_since is None:
        h.unhealthy_since = ctx.now()
    policy = ctx.spec.healing or HealingPolicy()
    due = next_rung(ctx, h)
    if not policy.enabled or due is None:
        return False
    rung, at = due
    if RUNGS.index(rung) > RUNGS.index(policy.max_rung) or ctx.now() < at:
        return False
    fleet, phases = ctx.op.fleet, ctx.op.memory.phases
    unhealthy_count, serving = fleet.unhealthy_share(phases)
    metrics.UNHEALTHY_SHARE.set(unhealthy_count / serving if serving else 0.0)
    why = fleet.pause_reason(phases, ctx.now())
    metrics.FAILING_SERVERS.set(fleet.burst(phases, ctx.now())[0])
    if why is not None:
        metrics.REPAIRS_PAUSED.set(1)
        ctx.set(
            conditions.REPAIRS_PAUSED,
            TRUE,
            Reason.FLEET_SHORT_CIRCUIT,
            f"{why}: {rung.value} is due but repairs are paused fleet-wide until the share drops",
        )
        if ctx.ref.uid in fleet.told:
            return False
        fleet.told.add(ctx.ref.uid)
        ctx.event(
            "Warning",
            "RepairsPaused",
            f"{why}: not repairing ({rung.value} due); the fault is likely the operator's "
            "or the network's",
        )
        return False
    metrics.REPAIRS_PAUSED.set(0)
    _resume(ctx, "the fleet is healthy enough again: repairs resume")
    fleet.told.discard(ctx.ref.uid)
    if not fleet.take(ctx.ref.uid):
        return False  # --heal-max-concurrent repairs in flight: wait for a free one
    return await _act(ctx, h, rung, detail)


async def _act(ctx: AgentContext, h: HealingStatus, rung: Rung, detail: str) -> bool:
    assert ctx.status.server is not None
    assert ctx.status.server.id is not None
    server_id = ctx.status.server.id
    replaced = False
    try:
        if rung == Rung.RESTART:
            ssh = await secrets.ensure_ssh_material(ctx)
            target = connection_target(ctx, ssh, server_id)
            result = await set_gateway(
                ctx.op.gateway_service, target, GatewayState.RESTARTED, ctx.config.configure_timeout
            )
        elif rung == Rung.REBOOT:
            await ctx.op.hetzner.reboot(server_id)
            result = f"server {server_id} rebooted"
        else:
            result = await _replace(ctx, server_id)
            replaced = True
    except (errors.Retryable, errors.NotFound) as exc:
        result = f"{FAILED}{exc}"
    now = ctx.now()
    h.rung, h.rung_at, h.last_repair_at = rung, now, now
    h.repairs = [*h.repairs, RepairRecord(rung=rung, at=now, result=result[:512])][-HISTORY:]
    ok = not result.startswith(FAILED)
    metrics.REPAIRS.labels(rung.value, "ok" if ok else "failed").inc()
    took = ctx.seconds_since(h.unhealthy_since)
    ctx.event(
        "Warning",
        f"Repair{rung.value.capitalize()}",
        f"gateway unhealthy for {took:.0f}s ({detail[:200]}): {rung.value}: {result}",
    )
    return replaced


async def _replace(ctx: AgentContext, server_id: int) -> str:
    """Delete the server, its device and auth key; a new attempt creates the replacement."""
    source = await replace.restore_source(ctx)
    with contextlib.suppress(errors.NotFound):
        await ctx.op.hetzner.delete_server(server_id)
    ctx.op.servers.forget(server_id)
    await replace.start_replacement(ctx, Reason.REPLACING, f"replacing server {server_id}")
    return f"server {server_id} deleted; {source}"
