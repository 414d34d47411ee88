"""Networking: confirm the server's device in the tailnet and record its ID and addresses.

The device is looked up by the ID recorded earlier, else by its hostname (unique per Agent:
it embeds a hash of the UID) and the tags its auth key carries, in one device list shared by
the whole fleet (`clients/devicecache.py`: one Tailscale call per poll, not two per Agent).

A missing device is never waited for without a bound:
- during a provisioning attempt (also one resumed after a stop: `attempt.pause`), a device
  that has not appeared within `--tailnet-join-timeout` fails the step, which rolls the
  attempt back and retries it after a back-off;
- outside an attempt (the Agent served before; its device was deleted, or expired, while it
  was stopped or behind our back) the server cannot be reached, like a gateway that does not
  answer: it counts as a failed probe for the fleet short-circuit and the repair ladder takes
  it (the restart cannot reach the host and fails, so the reboot follows at once, then the
  replacement with a fresh key, from the newest ready checkpoint).

A wake under `tailnetOnHibernate: keep` finds the kept device by its recorded ID at once, still
offline: it counts as joined only once the woken server is connected as that node again (the
same bound as a missing device). The node came back with its own key from the image's state,
so the single-use key minted for the wake's cloud-init (the fallback, had the device been
deleted meanwhile) was never used: it is revoked then, rather than left valid in a Secret and
in the server's user_data.
"""

from __future__ import annotations

from aura.controller import conditions
from aura.controller.clients.tailscale import Device
from aura.controller.conditions import FALSE, TRUE, Reason
from aura.controller.reconcile import attempt, repair, secrets, source
from aura.controller.reconcile.context import DONE, AgentContext, StepResult, Wait
from aura.models import TailnetStatus


async def find_devices(ctx: AgentContext, max_age: float = 0.0) -> list[Device]:
    """Every device that is this Agent's: the recorded ID and hostname+tag matches, from the
    fleet's shared device list (`DeviceCache`) fetched at most `max_age` seconds ago. Cleanup
    passes 0 (a device that joined a moment ago must not be missed); polls pass more."""
    recorded = ctx.status.tailscale.device_id if ctx.status.tailscale else None
    hostnames, tags = ctx.hostnames, set(ctx.tags)
    return [
        d
        for d in await ctx.op.devices.all(max_age)
        if d.id == recorded or (d.hostname in hostnames and tags <= set(d.tags))
    ]


async def ensure_tailnet_device(ctx: AgentContext) -> StepResult:
    """The server's device is in the tailnet, authorized, and recorded in `status.tailscale`."""
    joined = conditions.is_true(ctx.status.conditions, conditions.TAILNET_JOINED)
    if joined and conditions.is_true(ctx.status.conditions, conditions.HEALTHY):
        # The gateway answered over the tailnet: the device exists. Save the API call.
        return DONE
    devices = [d for d in await find_devices(ctx, ctx.config.poll_interval) if d.authorized]
    if not devices:
        waiting = f"waiting for device {ctx.hostname} with tags {','.join(ctx.tags)}"
        ctx.set(conditions.TAILNET_JOINED, FALSE, Reason.WAITING_FOR_DEVICE, waiting)
        if attempt.running(ctx):
            attempt.give_up_after(
                ctx,
                ctx.config.tailnet_join_timeout,
                f"device {ctx.hostname} did not join the tailnet within "
                f"{ctx.config.tailnet_join_timeout:.0f}s",
                reason=Reason.DEVICE_NEVER_JOINED,
            )
        elif await _unreachable(ctx):
            return Wait(0.1, "replacing the server")
        return Wait(ctx.config.poll_interval, "device not in tailnet yet")
    device = devices[0]
    if _kept_node(ctx, device):
        if device.online is False:
            waiting = f"waiting for device {device.id} ({device.hostname}), kept while "
            waiting += "hibernated, to reconnect from the checkpoint's node state"
            ctx.set(conditions.TAILNET_JOINED, FALSE, Reason.WAITING_FOR_DEVICE, waiting)
            if attempt.running(ctx):
                attempt.give_up_after(
                    ctx,
                    ctx.config.tailnet_join_timeout,
                    f"device {device.id} did not reconnect within "
                    f"{ctx.config.tailnet_join_timeout:.0f}s",
                    reason=Reason.DEVICE_NEVER_JOINED,
                )
            return Wait(ctx.config.poll_interval, "kept device not reconnected yet")
        await secrets.delete_tailnet_key(ctx)  # unused: the node logged in with its own key
    ctx.status.tailscale = TailnetStatus(
        device_id=device.id,
        hostname=device.hostname,
        ipv4=device.ipv4,
        ipv6=device.ipv6,
        online=device.online,
    )
    ctx.set(
        conditions.TAILNET_JOINED,
        TRUE,
        Reason.JOINED,
        f"device {device.id} joined as {device.hostname} ({device.ipv4})",
    )
    return DONE


def _kept_node(ctx: AgentContext, device: Device) -> bool:
    """`device` is the one kept through hibernation, and this server is its wake."""
    recorded = ctx.status.tailscale.device_id if ctx.status.tailscale else None
    woken = ctx.status.server_source is not None and not source.fresh_identity(ctx)
    return woken and source.waking(ctx) and device.id == recorded


async def _unreachable(ctx: AgentContext) -> bool:
    """Outside an attempt the device is gone: the server is unreachable, so the gateway is
    unhealthy; hand it to the repair ladder. True when the server was replaced."""
    assert ctx.status.server is not None
    assert ctx.status.server.id is not None
    ctx.op.fleet.probe_failed(ctx.ref.uid, ctx.status.server.id, ctx.now())
    detail = f"server unreachable: device {ctx.hostname} is not in the tailnet"
    if conditions.reason_of(ctx.status.conditions, conditions.HEALTHY) != Reason.GATEWAY_UNHEALTHY:
        ctx.event("Warning", "Unreachable", detail)
    ctx.set(conditions.HEALTHY, FALSE, Reason.GATEWAY_UNHEALTHY, detail)
    return await repair.unhealthy(ctx, detail)
