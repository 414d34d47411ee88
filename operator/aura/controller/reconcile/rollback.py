"""Rollback: a provisioning attempt that failed for good deletes what it created.

Triggers: a step past its retry budget, a step timeout (boot, cloud-init, tailnet join), the
provision deadline, or a permanent API error (invalid input, quota). The attempt is recorded
as failed for the current generation and `aura.dev/retry` annotation value; it stays Failed
(no retry storm) until either changes. The SSH Secret is kept: it holds no cloud object.
"""

from __future__ import annotations

from aura.controller import conditions, errors, naming
from aura.controller.conditions import FALSE, Reason
from aura.controller.reconcile.cleanup import delete_cloud_objects
from aura.controller.reconcile.context import AgentContext
from aura.models import ProvisioningStatus

ROLLED_BACK = "RolledBack"


def retry_token(ctx: AgentContext) -> str | None:
    return ctx.annotations.get(naming.RETRY_ANNOTATION)


def failed_attempt_is_current(ctx: AgentContext) -> bool:
    """True while the last attempt failed and neither the spec nor the annotation changed."""
    p = ctx.status.provisioning
    return (
        p is not None
        and p.failed_generation == ctx.generation
        and p.retry_token == retry_token(ctx)
    )


async def roll_back(ctx: AgentContext, cause: errors.StepFailed | errors.Permanent) -> None:
    """Record the failure, then delete the attempt's cloud objects (raises if incomplete)."""
    step = cause.step if isinstance(cause, errors.StepFailed) else "server"
    p = ctx.status.provisioning or ProvisioningStatus(attempt=1)
    p.failed_generation = ctx.generation
    p.retry_token = retry_token(ctx)
    p.failed_step = step
    ctx.status.provisioning = p
    message = (
        f"{cause.reason}: {cause}. Rolled back; change the spec or the "
        f"{naming.RETRY_ANNOTATION} annotation to try again"
    )
    ctx.set(conditions.READY, FALSE, Reason.PROVISIONING_FAILED, message)
    ctx.event("Warning", cause.reason, f"provisioning failed at step {step}: {cause}")
    await finish_rollback(ctx)


async def finish_rollback(ctx: AgentContext) -> None:
    """Delete what the failed attempt created; idempotent, re-run until it completes."""
    if conditions.reason_of(ctx.status.conditions, conditions.SERVER_READY) == ROLLED_BACK:
        return
    failures = await delete_cloud_objects(ctx, keep_ssh=True)
    if failures:
        raise errors.Retryable("rollback incomplete: " + "; ".join(failures))
    ctx.op.release_provisioning_slot(ctx.ref.uid)
    for type_ in (
        conditions.SERVER_READY,
        conditions.CONFIGURED,
        conditions.TAILNET_JOINED,
        conditions.HEALTHY,
    ):
        ctx.set(type_, FALSE, ROLLED_BACK, "deleted by the rollback of a failed attempt")
    ctx.event("Normal", ROLLED_BACK, "deleted the server, tailnet device and auth key")
