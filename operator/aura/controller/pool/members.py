"""What a pool member Agent does once claimed, and what its deletion removes.

A claimed member stops reconciling: the claimant is about to take its server, and the member's
own pass must not power it, reconfigure it or replace it meanwhile. Once the server carries the
claimant's UID (the commit point, `labels.py`), deleting the member removes only what is its
own: its auth key and Secrets. The server and the tailnet device are the claimant's now. A
member whose claim never committed (the claimant vanished) is deleted in full, like any Agent.
"""

from __future__ import annotations

from typing import Any

from aura.controller import errors, naming
from aura.controller.pool.labels import CLAIMED_BY, POOL
from aura.controller.reconcile import prerequisites, secrets
from aura.controller.reconcile.context import AgentContext


def is_member(annotations: dict[str, str]) -> bool:
    return POOL in annotations


def claimed(ctx: AgentContext) -> bool:
    """A member whose server an Agent is taking over: its own pass must leave it alone."""
    return is_member(ctx.annotations) and CLAIMED_BY in ctx.annotations


async def handed_over(ctx: AgentContext) -> bool:
    """The claim committed: the recorded server now carries another Agent's UID."""
    if not claimed(ctx) or ctx.status.server is None or ctx.status.server.id is None:
        return False
    try:
        server = await ctx.op.hetzner.get_server(ctx.status.server.id)
    except errors.NotFound:
        return False
    return server.labels.get(naming.AGENT_UID) not in (None, ctx.ref.uid)


async def delete_own(ctx: AgentContext) -> list[str]:
    """The member's own objects only: auth key, SSH and gateway-token Secrets."""
    failures: list[str] = []
    for what, step in (
        ("auth key", secrets.delete_tailnet_key),
        ("ssh secret", secrets.delete_ssh_material),
        ("gateway token secret", prerequisites.delete_generated_token),
    ):
        try:
            await step(ctx)
        except errors.AuraError as exc:
            failures.append(f"{what}: {exc}")
    ctx.status.server = ctx.status.tailscale = None
    return failures


def annotations_of(agent: dict[str, Any]) -> dict[str, str]:
    return dict(agent["metadata"].get("annotations") or {})
