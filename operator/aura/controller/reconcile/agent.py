"""The reconcile of one Agent: the ordered steps each desired state needs.

    running    attempt bookkeeping -> server (find/adopt/create) -> powered on -> configured
               -> in the tailnet -> gateway healthy
    stopped    graceful shutdown, poweroff after a timeout      (phase Stopped)
    suspended  the same, with the reason                        (phase Suspended)
    deleted    device, server, auth key, SSH Secret removed     (phase Deleted; object stays)

Every pass starts from what it reads, so a pass may start at any point and the operator may
die at any instant. A provisioning attempt has a deadline and each step a retry budget;
exceeding either rolls the attempt back (`rollback.py`). Ready summarises the other
conditions; the phase is derived from all of them (`conditions.derive_phase`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aura.controller import conditions, errors
from aura.controller.conditions import FALSE, TRUE, UNKNOWN, Reason
from aura.controller.reconcile import configure, health, power, rollback, server, tailnet
from aura.controller.reconcile.cleanup import delete_cloud_objects
from aura.controller.reconcile.context import DONE, AgentContext, StepResult, Wait
from aura.models import DesiredState, ProvisioningStatus

Step = Callable[[AgentContext], Awaitable[StepResult]]

RUNNING_STEPS: tuple[tuple[str, Step], ...] = (
    ("server", server.ensure_server),
    ("boot", server.ensure_server_running),
    ("configure", configure.ensure_configured),
    ("tailnet", tailnet.ensure_tailnet_device),
    ("health", health.ensure_healthy),
)
STOP_STEPS: tuple[tuple[str, Step], ...] = (("power", power.ensure_powered_off),)


async def reconcile_agent(ctx: AgentContext) -> StepResult:
    """Converge the Agent one pass; returns Done or Wait, raises `errors.*`."""
    desired = ctx.spec.desired_state
    if desired == DesiredState.DELETED:
        return await finalize_agent(ctx)
    if not ctx.status.conditions:
        # First sight: publish Queued (every condition Unknown) before touching any cloud.
        conditions.initialize_conditions(ctx.status.conditions, ctx.generation)
        return Wait(0.1, "accepted")
    conditions.initialize_conditions(ctx.status.conditions, ctx.generation)
    try:
        if desired == DesiredState.RUNNING:
            return await _run(ctx)
        return await _stop(ctx, desired)
    except errors.InvalidCredentials as exc:
        ctx.set(conditions.SERVER_READY, FALSE, Reason.INVALID_CREDENTIALS, str(exc))
        ctx.set(conditions.READY, FALSE, Reason.INVALID_CREDENTIALS, str(exc))
        raise


async def _run(ctx: AgentContext) -> StepResult:
    if rollback.failed_attempt_is_current(ctx):
        await rollback.finish_rollback(ctx)
        return DONE
    held = await server.ensure_budget_allows(ctx)
    if held is not None:
        return held
    _begin_attempt_if_needed(ctx)
    try:
        _check_deadline(ctx)
        result = await _run_steps(ctx, RUNNING_STEPS)
    except (errors.StepFailed, errors.Permanent) as exc:
        if ctx.status.provisioning is None:
            raise  # not provisioning (e.g. powering a stopped agent back on): no rollback
        await rollback.roll_back(ctx, exc)
        return DONE
    finally:
        if not rollback.failed_attempt_is_current(ctx):
            _summarize_ready(ctx)
    return result


def _begin_attempt_if_needed(ctx: AgentContext) -> None:
    p = ctx.status.provisioning
    if p is not None and p.failed_generation is not None:
        # The failed attempt is no longer current: the spec or the annotation changed.
        ctx.status.provisioning = ProvisioningStatus(
            attempt=p.attempt + 1, started_at=conditions.now()
        )
        for type_ in conditions.TYPES:
            ctx.set(type_, UNKNOWN, Reason.PENDING, "retrying provisioning")
        ctx.event("Normal", "RetryingProvisioning", f"starting attempt {p.attempt + 1}")
    elif p is None and (ctx.status.server is None or ctx.status.server.id is None):
        ctx.status.provisioning = ProvisioningStatus(attempt=1, started_at=conditions.now())


def _check_deadline(ctx: AgentContext) -> None:
    p = ctx.status.provisioning
    if p is not None and ctx.seconds_since(p.started_at) > ctx.config.provision_deadline:
        raise errors.StepFailed(
            p.failed_step or "provision",
            f"provisioning exceeded its deadline of {ctx.config.provision_deadline:.0f}s",
            reason="ProvisionDeadlineExceeded",
        )


async def _run_steps(ctx: AgentContext, steps: tuple[tuple[str, Step], ...]) -> StepResult:
    """Run `steps` in order until one waits. A pass also ends where the phase changes, so
    every phase is written (and shown, and timed) before the next one starts."""
    phase = conditions.derive_phase(ctx.status.conditions, ctx.spec.desired_state)
    for index, (name, step) in enumerate(steps):
        ctx.step = name
        try:
            result = await step(ctx)
        except (errors.RateLimited, errors.Locked):
            raise  # back-pressure, not a failure of the step
        except errors.Retryable as exc:
            raise _count_failure(ctx, name, exc) from None
        p = ctx.status.provisioning
        if p is not None and p.failed_step == name:
            p.failed_step, p.failures = None, 0
        if isinstance(result, Wait):
            return result
        now = conditions.derive_phase(ctx.status.conditions, ctx.spec.desired_state)
        if now != phase and index + 1 < len(steps):
            return Wait(0.1, f"phase {now}")
    return DONE


def _count_failure(ctx: AgentContext, step: str, exc: errors.Retryable) -> errors.AuraError:
    """The error to raise for a transient failure: retry with back-off, or give up."""
    p = ctx.status.provisioning
    if p is None:
        return errors.Retryable(str(exc), retry_after=ctx.config.retry_backoff)
    p.failures = p.failures + 1 if p.failed_step == step else 1
    p.failed_step = step
    if p.failures >= ctx.config.step_retries:
        return errors.StepFailed(
            step, f"{exc} (failed {p.failures} times)", reason="RetryBudgetExhausted"
        )
    return errors.Retryable(
        f"{exc} (try {p.failures} of {ctx.config.step_retries})",
        retry_after=ctx.config.retry_backoff * 2 ** (p.failures - 1),
    )


def _summarize_ready(ctx: AgentContext) -> None:
    """Ready is True when every other condition is; else it carries the first blocker."""
    for type_ in (
        conditions.SERVER_READY,
        conditions.CONFIGURED,
        conditions.TAILNET_JOINED,
        conditions.HEALTHY,
    ):
        found = conditions.get_condition(ctx.status.conditions, type_)
        if found is None or found.status != TRUE:
            reason = found.reason if found else Reason.PENDING
            message = found.message if found else ""
            ctx.set(conditions.READY, FALSE, reason, f"{type_}: {message}")
            return
    ctx.set(conditions.READY, TRUE, Reason.READY, "agent is running")


async def _stop(ctx: AgentContext, desired: DesiredState) -> StepResult:
    if ctx.status.provisioning is not None:
        # Stopping abandons a provisioning attempt; starting again resumes without a deadline.
        ctx.status.provisioning = None
    ctx.op.release_provisioning_slot(ctx.ref.uid)
    result = await _run_steps(ctx, STOP_STEPS)
    reason = Reason.STOPPED if desired == DesiredState.STOPPED else Reason.SUSPENDED
    why = ctx.spec.desired_state_reason or f"{desired.value} by request"
    if conditions.reason_of(ctx.status.conditions, conditions.HEALTHY) != Reason.PENDING:
        ctx.set(conditions.HEALTHY, FALSE, reason, f"agent is {desired.value}")
    if isinstance(result, Wait):
        ctx.set(conditions.READY, FALSE, reason, f"stopping: {why}")
    else:
        ctx.set(conditions.READY, FALSE, reason, why)
    return result


async def finalize_agent(ctx: AgentContext) -> StepResult:
    """Remove every cloud object of the Agent; raises Retryable until all are gone."""
    if conditions.reason_of(ctx.status.conditions, conditions.READY) == Reason.DELETED:
        return DONE
    ctx.set(conditions.READY, FALSE, Reason.DELETING, "removing cloud resources")
    ctx.op.release_provisioning_slot(ctx.ref.uid)
    failures = await delete_cloud_objects(ctx, keep_ssh=False)
    if failures:
        raise errors.Retryable("cleanup incomplete, retrying: " + "; ".join(failures))
    for type_ in conditions.TYPES:
        ctx.set(type_, FALSE, Reason.DELETED, "cloud resources removed")
    ctx.status.provisioning = None
    ctx.event("Normal", "Deleted", "server, tailnet device and secrets removed")
    return DONE
