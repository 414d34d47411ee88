"""A provisioning attempt, from its start to its end: the one owner of its memory and clocks.

An attempt starts when an Agent that should run has no server (the first provisioning, the
replacement of a server deleted behind our back, or a retry after a failed attempt) and ends
when its gateway first answers healthy. Its memory is `status.provisioning`, explicit fields
with timestamps (never a condition's reason or lastTransitionTime):

    attempt, startedAt        which attempt, since when: the deadline (--provision-deadline)
    step, since               the step it waits in, since when: the step timeouts
                              (--boot-timeout, --cloud-init-timeout, --tailnet-join-timeout)
    failedStep, failures      consecutive failures of one step: the retry budget (--step-retries)
    failedGeneration,         a failed attempt stays failed (no retry storm) for this generation
    retryToken                and value of the aura.dev/retry annotation; changing either retries
    rolledBackAt              its rollback finished deleting what it created

While it runs, an attempt holds one of the `--max-concurrent-provisions` slots (taken before
the first create, released at its end, on failure, on stop and on delete).

An attempt fails when a step exhausts its retry budget or its timeout, when the deadline
passes, or on a permanent API error. It is then rolled back: the failure is recorded, Ready
says why (`ProvisioningFailed`) and the attempt's cloud objects (device, server, auth key) are
deleted; the SSH and gateway-token Secrets are kept, they hold no cloud object.

Time comes from the injected clock (`ctx.now()`).
"""

from __future__ import annotations

from aura.controller import conditions, errors, metrics, naming
from aura.controller.conditions import FALSE, UNKNOWN, Reason

# `cleanup` as a module: attempt -> cleanup -> tailnet -> attempt is a cycle (cleanup.py).
from aura.controller.reconcile import cleanup
from aura.controller.reconcile.context import AgentContext
from aura.models import ProvisioningStatus

_ROLLED_BACK_TYPES = (
    conditions.SERVER_READY,
    conditions.CONFIGURED,
    conditions.TAILNET_JOINED,
    conditions.HEALTHY,
)


def retry_token(ctx: AgentContext) -> str | None:
    return ctx.annotations.get(naming.RETRY_ANNOTATION)


def running(ctx: AgentContext) -> bool:
    """True while an attempt is under way (and not failed)."""
    p = ctx.status.provisioning
    return p is not None and p.failed_generation is None


def failed(ctx: AgentContext) -> bool:
    """True while the last attempt failed and neither the spec nor the annotation changed."""
    p = ctx.status.provisioning
    return (
        p is not None
        and p.failed_generation == ctx.generation
        and p.retry_token == retry_token(ctx)
    )


def begin_if_needed(ctx: AgentContext) -> None:
    """Start an attempt when the Agent has no server, or retry one that failed earlier."""
    p = ctx.status.provisioning
    if p is not None and p.failed_generation is not None:
        # The failed attempt is no longer current: the spec or the annotation changed.
        _begin(ctx, p.attempt + 1)
        for type_ in conditions.TYPES:
            ctx.set(type_, UNKNOWN, Reason.PENDING, "retrying provisioning")
        ctx.event("Normal", "RetryingProvisioning", f"starting attempt {p.attempt + 1}")
    elif p is None and (ctx.status.server is None or ctx.status.server.id is None):
        _begin(ctx, 1)


def restart(ctx: AgentContext) -> None:
    """Start a new attempt for a replacement server (the old one vanished)."""
    p = ctx.status.provisioning
    _begin(ctx, p.attempt + 1 if p is not None else 1)


def _begin(ctx: AgentContext, number: int) -> None:
    ctx.status.provisioning = ProvisioningStatus(attempt=number, started_at=ctx.now())


def check_deadline(ctx: AgentContext) -> None:
    """Raise StepFailed once the running attempt is past `--provision-deadline`."""
    p = ctx.status.provisioning
    if p is not None and ctx.seconds_since(p.started_at) > ctx.config.provision_deadline:
        raise errors.StepFailed(
            p.step or "provision",
            f"provisioning exceeded its deadline of {ctx.config.provision_deadline:.0f}s",
            reason=Reason.PROVISION_DEADLINE_EXCEEDED,
        )


def take_slot(ctx: AgentContext) -> bool:
    """Hold one of the `--max-concurrent-provisions` slots (False: queue and come back)."""
    return ctx.op.slots.take(ctx.ref.uid)


def step_waiting(ctx: AgentContext, step: str) -> None:
    """The attempt waits in `step`: its timeout counts from the first time it waited there."""
    p = ctx.status.provisioning
    if p is not None and p.step != step:
        p.step, p.since = step, ctx.now()


def step_succeeded(ctx: AgentContext, step: str) -> None:
    """A success resets the step's retry budget."""
    p = ctx.status.provisioning
    if p is not None and p.failed_step == step:
        p.failed_step, p.failures = None, 0


def step_failed(ctx: AgentContext, step: str, exc: errors.Retryable) -> errors.AuraError:
    """The error to raise for a transient failure of `step`: retry with back-off, or give up.

    Outside an attempt (e.g. powering a stopped Agent back on) every failure is retried.
    """
    p = ctx.status.provisioning
    if p is None:
        return errors.Retryable(str(exc), retry_after=ctx.config.retry_backoff)
    p.failures = p.failures + 1 if p.failed_step == step else 1
    p.failed_step = step
    if p.failures >= ctx.config.step_retries:
        return errors.StepFailed(
            step, f"{exc} (failed {p.failures} times)", reason=Reason.RETRY_BUDGET_EXHAUSTED
        )
    return errors.Retryable(
        f"{exc} (try {p.failures} of {ctx.config.step_retries})",
        retry_after=ctx.config.retry_backoff * 2 ** (p.failures - 1),
    )


def give_up_after(ctx: AgentContext, timeout: float, message: str, *, reason: str) -> None:
    """While an attempt waits in the running step, fail it once it has waited over `timeout`."""
    p = ctx.status.provisioning
    if p is not None and p.step == ctx.step and ctx.seconds_since(p.since) > timeout:
        raise errors.StepFailed(ctx.step, message, reason=reason)


def end(ctx: AgentContext) -> None:
    """The attempt succeeded: its deadline stops and its slot frees."""
    if ctx.status.provisioning is not None:
        ctx.status.provisioning = None
    ctx.op.slots.release(ctx.ref.uid)


def abandon(ctx: AgentContext) -> None:
    """Stopping or deleting abandons an attempt; starting again resumes without a deadline."""
    ctx.status.provisioning = None
    ctx.op.slots.release(ctx.ref.uid)


async def roll_back(ctx: AgentContext, cause: errors.StepFailed | errors.Permanent) -> None:
    """Record the failure, then delete the attempt's cloud objects (raises if incomplete)."""
    step = cause.step if isinstance(cause, errors.StepFailed) else "server"
    p = ctx.status.provisioning or ProvisioningStatus(attempt=1)
    p.failed_generation = ctx.generation
    p.retry_token = retry_token(ctx)
    p.failed_step = step
    p.rolled_back_at = None
    ctx.status.provisioning = p
    message = (
        f"{cause.reason}: {cause}. Rolled back; change the spec or the "
        f"{naming.RETRY_ANNOTATION} annotation to try again"
    )
    ctx.set(conditions.READY, FALSE, Reason.PROVISIONING_FAILED, message)
    ctx.event("Warning", cause.reason, f"provisioning failed at step {step}: {cause}")
    metrics.ROLLBACKS.labels(ctx.ref.namespace, step).inc()
    await finish_rollback(ctx)


async def finish_rollback(ctx: AgentContext) -> None:
    """Delete what the failed attempt created; idempotent, re-run until it completes."""
    p = ctx.status.provisioning
    if p is None or p.rolled_back_at is not None:
        return
    failures = await cleanup.delete_cloud_objects(ctx, keep_secrets=True)
    if failures:
        raise errors.Retryable("rollback incomplete: " + "; ".join(failures))
    ctx.op.slots.release(ctx.ref.uid)
    p.rolled_back_at = ctx.now()
    for type_ in _ROLLED_BACK_TYPES:
        ctx.set(type_, FALSE, Reason.ROLLED_BACK, "deleted by the rollback of a failed attempt")
    ctx.event("Normal", Reason.ROLLED_BACK, "deleted the server, tailnet device and auth key")
