"""Which golden image a new Agent's server boots from (the server step's hook).

An Agent boots from a golden image when an AgentImage of its namespace recorded one (a build
that passed the Agent health check, `build.py`) for the Agent's `spec.runtime.openclawVersion`,
`spec.server.image` and CPU architecture; the newest such record wins. Never for a builder
Agent (it is what makes the image) nor for a clone (its checkpoint is its image). Without a
match the Agent takes the ordinary path from the base image, so a missing, building or failed
AgentImage only costs time, never an Agent.
"""

from __future__ import annotations

from pydantic import ValidationError

from aura.controller.fleet_images.labels import BUILDER_ANNOTATION
from aura.controller.reconcile.context import AgentContext
from aura.image_models import IMAGE_PLURAL, AgentImageStatus, ImageRecord


def architecture(server_type: str) -> str:
    """Hetzner's arm64 types are the `cax` family; every other family is x86."""
    return "arm" if server_type.startswith("cax") else "x86"


async def golden_image(ctx: AgentContext) -> ImageRecord | None:
    """The newest recorded golden image that fits this Agent, or None."""
    store = ctx.op.checkpoints
    if store is None or ctx.spec.source is not None or BUILDER_ANNOTATION in ctx.annotations:
        return None
    arch = architecture(ctx.spec.server.type)
    fits: list[ImageRecord] = []
    for obj in await store.list(IMAGE_PLURAL, ctx.ref.namespace):
        if obj["metadata"].get("deletionTimestamp"):
            continue
        try:
            status = AgentImageStatus.model_validate(dict(obj.get("status") or {}))
        except ValidationError:
            continue  # a status from another version of Aura: not ours to trust
        fits += [
            r
            for r in status.images
            if r.openclaw_version == ctx.spec.runtime.openclaw_version
            and r.base_image == ctx.spec.server.image
            and r.architecture == arch
        ]
    return max(fits, key=lambda r: r.built_at) if fits else None
