"""Networking: confirm the server's device in the tailnet and record its ID and addresses.

The device is looked up by the ID recorded earlier, else by its hostname (unique per Agent:
it embeds a hash of the UID) and the tags its auth key carries, in one device list shared by
the whole fleet (`clients/devicecache.py`: one Tailscale call per poll, not two per Agent).
A device that has not appeared within `--tailnet-join-timeout` fails the step, which rolls
the attempt back.
"""

from __future__ import annotations

from aura.controller import conditions
from aura.controller.clients.tailscale import Device
from aura.controller.conditions import FALSE, TRUE, Reason
from aura.controller.reconcile import attempt
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
        ctx.set(
            conditions.TAILNET_JOINED,
            FALSE,
            Reason.WAITING_FOR_DEVICE,
            f"waiting for device {ctx.hostname} with tags {','.join(ctx.tags)}",
        )
        attempt.give_up_after(
            ctx,
            ctx.config.tailnet_join_timeout,
            f"device {ctx.hostname} did not join the tailnet within "
            f"{ctx.config.tailnet_join_timeout:.0f}s",
            reason=Reason.DEVICE_NEVER_JOINED,
        )
        return Wait(ctx.config.poll_interval, "device not in tailnet yet")
    device = devices[0]
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
