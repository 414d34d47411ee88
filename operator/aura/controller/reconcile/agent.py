"""The reconcile of one Agent: the ordered steps each desired state needs.

    running    prerequisites (runtime Secret, AgentBudgets; no cloud call) -> attempt
               bookkeeping -> server (find/adopt/create) -> booted -> configured -> in the
               tailnet -> gateway healthy
    stopped    graceful shutdown, poweroff after a timeout      (phase Stopped)
    suspended  the same, with the reason                        (phase Suspended)
    hibernated checkpoint, then the server is deleted             (hibernate.py; Hibernated)
               (also a stop or suspend that lasted hibernateAfter; `running` wakes: wake.py)
    deleted    device, server, auth key, SSH Secret removed     (phase Deleted; object stays)

Every pass starts from what it reads, so a pass may start at any point and the operator may
die at any instant. Provisioning runs as an attempt with a deadline, step timeouts and a retry
budget per step; `attempt.py` owns all of it, including the rollback of a failed attempt.
Ready summarises the other conditions; the phase is derived from all of them
(`conditions.derive_phase`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aura.controller import conditions, errors
from aura.controller.checkpoints import final, hold, retention
from aura.controller.conditions import FALSE, TRUE, Reason
from aura.controller.pool import members
from aura.controller.reconcile import (
    attempt,
    boot,
    budget,
    configure,
    health,
    hibernate,
    power,
    prerequisites,
    server,
    tailnet,
    wake,
)
from aura.controller.reconcile.cleanup import delete_cloud_objects
from aura.controller.reconcile.context import DONE, AgentContext, Done, StepResult, Wait
from aura.hibernation_models import HibernationCause
from aura.models import DesiredState

Step = Callable[[AgentContext], Awaitable[StepResult]]

PREREQUISITE_STEPS: tuple[tuple[str, Step], ...] = (
    ("prerequisites", prerequisites.ensure_prerequisites),
    ("budget", budget.ensure_budget_allows),
)
RUNNING_STEPS: tuple[tuple[str, Step], ...] = (
    ("server", server.ensure_server),
    ("boot", boot.ensure_server_running),
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
    if members.claimed(ctx):  # hook: warm pool: another Agent is taking this server over
        return DONE
    if not ctx.status.conditions:
        # First sight: publish Queued (every condition Unknown) before touching any cloud.
        conditions.initialize_conditions(ctx.status.conditions, ctx.generation, at=ctx.now())
        return Wait(0.1, "accepted")
    conditions.initialize_conditions(ctx.status.conditions, ctx.generation, at=ctx.now())
    if (held := await hold.wait_if_held(ctx)) is not None:  # hook: checkpoints
        hibernate.while_held(ctx)
        return held
    try:
        if hibernate.wanted(ctx):
            return await hibernate.ensure_hibernated(ctx)
        if desired == DesiredState.RUNNING:
            return await _run(ctx)
        result = await _stop(ctx, desired)
        if isinstance(result, Done) and hibernate.auto_due(ctx):
            return hibernate.begin(ctx, HibernationCause.AUTOMATIC)
        return result
    except errors.InvalidCredentials as exc:
        ctx.set(conditions.SERVER_READY, FALSE, Reason.INVALID_CREDENTIALS, str(exc))
        ctx.set(conditions.READY, FALSE, Reason.INVALID_CREDENTIALS, str(exc))
        raise


async def _run(ctx: AgentContext) -> StepResult:
    if attempt.failed(ctx):
        await attempt.finish_rollback(ctx)
        return _after_failure(ctx)
    if (woken := await wake.before_running(ctx)) is not None:
        return woken
    ctx.status.shutdown_requested_at = None
    ctx.status.stopped_at = None
    try:
        result = await _run_steps(ctx, PREREQUISITE_STEPS)
        if isinstance(result, Done):
            attempt.begin_if_needed(ctx)
            attempt.check_deadline(ctx)
            result = await _run_steps(ctx, RUNNING_STEPS)
        else:
            attempt.pause(ctx)  # waiting on the user: no deadline ticks, no slot held
    except (errors.StepFailed, errors.Permanent) as exc:
        if not attempt.running(ctx):
            raise  # not provisioning (e.g. powering a stopped agent back on): no rollback
        await attempt.roll_back(ctx, exc)
        return _after_failure(ctx)
    finally:
        if not attempt.failed(ctx):
            _summarize_ready(ctx)
    if conditions.is_true(ctx.status.conditions, conditions.READY):
        wake.after_running(ctx)
    return result


def _after_failure(ctx: AgentContext) -> StepResult:
    """A failed attempt waits for its automatic retry (transient cause) or for the user.

    The wait comes back at least every `--poll-interval`: kopf holds a change that arrives
    while its handler waits until the wait ends, and a user who stops the Agent or fixes its
    spec during a long back-off must not wait for it (the pass is cheap: no cloud call)."""
    delay = attempt.retry_delay(ctx)
    if delay is None:
        return DONE
    return Wait(max(min(delay, ctx.config.poll_interval), 0.1), "retrying after failure")


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
            raise attempt.step_failed(ctx, name, exc) from exc
        attempt.step_succeeded(ctx, name)
        if isinstance(result, Wait):
            attempt.step_waiting(ctx, name)
            return result
        now = conditions.derive_phase(ctx.status.conditions, ctx.spec.desired_state)
        if now != phase and index + 1 < len(steps):
            return Wait(0.1, f"phase {now}")
    return DONE


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
    attempt.pause(ctx)  # HEALFIX: resumed (and timed again) on start
    result = await _run_steps(ctx, STOP_STEPS)
    reason = Reason.STOPPED if desired == DesiredState.STOPPED else Reason.SUSPENDED
    why = ctx.spec.desired_state_reason or f"{desired.value} by request"
    if conditions.reason_of(ctx.status.conditions, conditions.HEALTHY) != Reason.PENDING:
        ctx.set(conditions.HEALTHY, FALSE, reason, f"agent is {desired.value}")
    if isinstance(result, Wait):
        ctx.set(conditions.READY, FALSE, reason, f"stopping: {why}")
    elif ctx.status.server is None:
        ctx.set(conditions.READY, FALSE, reason, f"{why}; no server, one will be created on start")
    else:
        ctx.set(conditions.READY, FALSE, reason, why)
        # Off since when: automatic hibernation (--hibernate-after) counts from it.
        ctx.status.stopped_at = ctx.status.stopped_at or ctx.now().replace(microsecond=0)
    return result


async def finalize_agent(ctx: AgentContext) -> StepResult:
    """Remove every cloud object of the Agent; raises Retryable until all are gone."""
    if ctx.status.deleted_at is not None:
        return DONE
    if (held := await hold.wait_if_held(ctx)) is not None:  # hook: checkpoints
        return held
    if (kept := await final.ensure_final_checkpoint(ctx)) is not None:  # --retain-after-delete
        return kept
    await retention.delete_with_agent(ctx)  # hook: checkpoints
    ctx.set(conditions.READY, FALSE, Reason.DELETING, "removing cloud resources")
    attempt.abandon(ctx)
    if await members.handed_over(ctx):  # hook: warm pool: server and device are another's
        failures = await members.delete_own(ctx)
    else:
        failures = await delete_cloud_objects(ctx, keep_secrets=False)
    if failures:
        raise errors.Retryable("cleanup incomplete, retrying: " + "; ".join(failures))
    for type_ in conditions.TYPES:
        ctx.set(type_, FALSE, Reason.DELETED, "cloud resources removed")
    ctx.status.deleted_at = ctx.now()
    ctx.event("Normal", "Deleted", "server, tailnet device and secrets removed")
    return DONE
