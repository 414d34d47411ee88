"""A new Agent from a checkpoint (`spec.source.checkpoint`): the image its server starts from.

Everything else about the clone is the ordinary first provisioning of a new Agent, which is
what gives it a fresh identity: its own SSH key pair and host key (its own Secret), a new
tailnet auth key and device, its own runtime Secret from its own spec. The cloud-init
document of a clone also removes the tailnet state and host keys the image carries
(`cloudinit.CloudInit.fresh_identity`), so nothing of the original's identity is reused; the
original Agent is never touched.
"""

from __future__ import annotations

import re

from aura.checkpoint_models import CHECKPOINT_PLURAL
from aura.controller import errors
from aura.controller.reconcile.context import AgentContext


async def source_image(ctx: AgentContext) -> int | None:
    """The snapshot image ID to create the server from; None without `spec.source`.

    Raises `errors.Retryable` while the checkpoint is not ready yet and `errors.Permanent`
    (before any server is created) when it cannot be used.
    """
    source = ctx.spec.source
    if source is None:
        return None
    if ctx.op.checkpoints is None:
        raise errors.Permanent("checkpoints are not available", reason="NoCheckpointStore")
    name = source.checkpoint
    found = await ctx.op.checkpoints.get(CHECKPOINT_PLURAL, ctx.ref.namespace, name)
    if found is None:
        raise errors.Permanent(
            f"spec.source.checkpoint: AgentCheckpoint {name} not found in {ctx.ref.namespace}",
            reason="SourceNotFound",
        )
    status = found.get("status") or {}
    if status.get("phase") == "Failed":
        raise errors.Permanent(
            f"spec.source.checkpoint: AgentCheckpoint {name} failed", reason="SourceFailed"
        )
    if not status.get("readyToUse") or status.get("imageID") is None:
        raise errors.Retryable(f"spec.source.checkpoint: {name} is not readyToUse yet")
    source_type = (status.get("source") or {}).get("serverType")
    if source_type and _smaller(ctx.spec.server.type, source_type):
        raise errors.Permanent(
            f"spec.server.type {ctx.spec.server.type} is smaller than the checkpoint's "
            f"{source_type}: a server created from it needs at least "
            f"{status.get('diskSizeGB', '?')} GB of disk; choose {source_type} or larger",
            reason="SourceDiskTooLarge",
        )
    return int(status["imageID"])


def _smaller(wanted: str, source: str) -> bool:
    """Same family (cx, cpx, cax, ccx) with a lower size number: a smaller disk. Types of
    different families are left to Hetzner, which refuses a disk smaller than the image."""
    w, s = _TYPE.match(wanted), _TYPE.match(source)
    if w is None or s is None or w.group(1) != s.group(1):
        return False
    return int(w.group(2)) < int(s.group(2))


_TYPE = re.compile(r"^([a-z]+)([0-9]+)")
