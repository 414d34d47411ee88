"""Networking: confirm the server's device in the tailnet and record its ID and addresses.

The device is looked up by the ID recorded earlier, else by its hostname (unique per Agent:
it embeds a hash of the UID) and the tags its auth key carries. A device that has not
appeared within `--tailnet-join-timeout` fails the step, which rolls the attempt back.
"""

from __future__ import annotations

from aura.controller import conditions, errors
from aura.controller.clients.tailscale import Device
from aura.controller.conditions import FALSE, TRUE, Reason
from aura.controller.reconcile import attempt
from aura.controller.reconcile.context import DONE, AgentContext, StepResult, Wait
from aura.models import TailnetStatus


async def find_devices(ctx: AgentContext) -> list[Device]:
    """Every device that is this Agent's: the recorded ID and hostname+tag matches."""
    found: dict[str, Device] = {}
    recorded = ctx.status.tailscale.device_id if ctx.status.tailscale else None
    if recorded:
        try:
            device = await ctx.op.tailnet.get_device(recorded)
            found[device.id] = device
        except errors.NotFound:
            pass
    for hostname in sorted(ctx.hostnames):
        for device in await ctx.op.tailnet.list_devices(hostname=hostname):
            if set(ctx.tags) <= set(device.tags):
                found.setdefault(device.id, device)
    return list(found.values())


async def ensure_tailnet_device(ctx: AgentContext) -> StepResult:
    """The server's device is in the tailnet, authorized, and recorded in `status.tailscale`."""
    joined = conditions.is_true(ctx.status.conditions, conditions.TAILNET_JOINED)
    if joined and conditions.is_true(ctx.status.conditions, conditions.HEALTHY):
        # The gateway answered over the tailnet: the device exists. Save the API call.
        return DONE
    devices = [d for d in await find_devices(ctx) if d.authorized]
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
