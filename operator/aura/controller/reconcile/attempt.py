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
                              (startedAt unset: paused by a stop, resumed by a start; `pause`)
    consecutiveFailures,      transient failures in a row, and when the next attempt starts by
    nextAttemptAt             itself (`backoff_seconds`); unset after a permanent failure

While it runs, an attempt holds one of the `--max-concurrent-provisions` slots (taken in
`pacing.py` before the first create, first come first served; released here at its end, on
failure, on stop and on delete).

An attempt fails when a step exhausts its retry budget or its timeout, when the deadline
passes, or on a permanent API error. It is then rolled back: the failure is recorded and the
attempt's cloud objects (device, server, auth key) are deleted; the SSH and gateway-token
Secrets are kept, they hold no cloud object.

What comes next depends on the cause (KubeVirt's start-failure back-off):

- transient (a step's timeout or retry budget, the deadline: timeouts, 5xx, lost responses
  behind them): Ready says `RetryingAfterFailure` and when; a new attempt starts by itself at
  `nextAttemptAt`, after `backoff_seconds(consecutiveFailures)`, quadratic with jitter and
  capped by `--attempt-backoff-max`. A success resets the count (the attempt's memory goes).
- permanent (invalid input, unknown type or location, a budget block: `errors.Permanent`):
  Ready says `ProvisioningFailed`; nothing retries until the spec or the `aura.dev/retry`
  annotation changes. (Rejected credentials never fail an attempt: they are retried slowly,
  see `errors.to_kopf`, so fixed credentials resume it.)

Time comes from the injected clock (`ctx.now()`).
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

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
    """True while an attempt is under way (and not failed; a paused one counts)."""
    p = ctx.status.provisioning
    return p is not None and p.failed_generation is None


def _user_retry(ctx: AgentContext) -> bool:
    """The spec or the retry annotation changed since the last attempt failed."""
    p = ctx.status.provisioning
    return p is not None and (
        p.failed_generation != ctx.generation or p.retry_token != retry_token(ctx)
    )


def failed(ctx: AgentContext) -> bool:
    """True while the last attempt failed and nothing says to try again yet: neither the spec
    nor the annotation changed, and its back-off (transient causes only) has not run out or
    its rollback is still deleting."""
    p = ctx.status.provisioning
    if p is None or p.failed_generation is None or _user_retry(ctx):
        return False
    if p.next_attempt_at is None or p.rolled_back_at is None:
        return True
    return ctx.now() < p.next_attempt_at


def retry_delay(ctx: AgentContext) -> float | None:
    """Seconds until a failed attempt's automatic retry; None when none is planned."""
    p = ctx.status.provisioning
    if p is None or p.next_attempt_at is None:
        return None
    return max(0.0, (p.next_attempt_at - ctx.now()).total_seconds())


def backoff_seconds(failures: int, cap: float, rng: random.Random | None = None) -> float:
    """The wait before the next attempt after `failures` transient failures in a row.

    KubeVirt's start-failure back-off: `interval * failures**2` plus a jitter of up to half
    of that plus `interval / 10`, capped at `cap`; `interval = cap / 30` (10 s at the default
    cap of 300 s, so 10-16 s, 40-61 s, 90-136 s, 160-241 s, then 300 s).
    """
    interval = cap / 30
    delay = interval * max(failures, 1) ** 2
    jitter = (rng or random).uniform(0, delay / 2 + interval / 10)
    return float(min(cap, delay + jitter))


def begin_if_needed(ctx: AgentContext) -> None:
    """Start an attempt when the Agent has no server, or retry one that failed earlier."""
    p = ctx.status.provisioning
    if p is not None and p.failed_generation is not None:
        # The failed attempt is no longer current: its back-off ran out (the transient failure
        # count carries over), or the spec or the annotation changed (a fresh start).
        carried = 0 if _user_retry(ctx) else p.consecutive_failures
        _begin(ctx, p.attempt + 1)
        assert ctx.status.provisioning is not None
        ctx.status.provisioning.consecutive_failures = carried
        for type_ in conditions.TYPES:
            ctx.set(type_, UNKNOWN, Reason.PENDING, "retrying provisioning")
        why = f"after {carried} transient failure(s)" if carried else "on request"
        ctx.event("Normal", "RetryingProvisioning", f"starting attempt {p.attempt + 1} {why}")
    elif p is None and (ctx.status.server is None or ctx.status.server.id is None):
        _begin(ctx, 1)
    elif p is not None and p.started_at is None:
        # HEALFIX: a paused attempt (`pause`) resumes with fresh clocks.
        p.started_at, p.step, p.since = ctx.now(), None, None


def restart(ctx: AgentContext) -> None:
    """Start a new attempt for a replacement server (the old one vanished)."""
    p = ctx.status.provisioning
    _begin(ctx, p.attempt + 1 if p is not None else 1)


def _begin(ctx: AgentContext, number: int) -> None:
    ctx.status.provisioning = ProvisioningStatus(attempt=number, started_at=ctx.now())


def check_deadline(ctx: AgentContext) -> None:
    """Raise StepFailed once the running attempt is past `--provision-deadline`."""
    p = ctx.status.provisioning
    if p is not None and ctx.status.server is None and ctx.ref.uid not in ctx.op.slots.holders:
        return  # queued for a slot (pacing.py): its deadline starts when it gets one
    if p is not None and ctx.seconds_since(p.started_at) > ctx.config.provision_deadline:
        raise errors.StepFailed(
            p.step or "provision",
            f"provisioning exceeded its deadline of {ctx.config.provision_deadline:.0f}s",
            reason=Reason.PROVISION_DEADLINE_EXCEEDED,
        )


def step_waiting(ctx: AgentContext, step: str) -> None:
    """The attempt waits in `step`: its timeout counts from the first time it waited there."""
    p = ctx.status.provisioning
    if p is not None and p.started_at is not None and p.step != step:
        p.step, p.since = step, ctx.now()


def step_succeeded(ctx: AgentContext, step: str) -> None:
    """A success resets the step's retry budget."""
    p = ctx.status.provisioning
    if p is not None and p.failed_step == step:
        p.failed_step, p.failures = None, 0


def step_failed(ctx: AgentContext, step: str, exc: errors.Retryable) -> errors.AuraError:
    """The error to raise for a transient failure of `step`: retry with back-off, or give up.

    Outside an attempt, or while it is paused (stopping), every failure is retried.
    """
    p = ctx.status.provisioning
    if p is None or p.started_at is None:
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
    ctx.op.slots.release(ctx.ref.uid, succeeded=True)


def abandon(ctx: AgentContext) -> None:
    """Deleting (or a budget hold before any server exists) drops the attempt and its slot."""
    ctx.status.provisioning = None
    ctx.op.slots.release(ctx.ref.uid)


def pause(ctx: AgentContext) -> None:
    """HEALFIX: stopping, or waiting on the user, pauses an unfinished attempt: its slot frees
    and its clocks stop (`startedAt`, `step` and `since` unset); `begin_if_needed` resumes it
    with fresh clocks when the Agent should run again. A server stopped half-provisioned
    (e.g. before its device joined, which it will never do on a later boot) is so still
    timed by the step timeouts and the deadline, and rolled back and retried if it never
    comes up. A failed attempt is dropped: starting again is a fresh start."""
    p = ctx.status.provisioning
    if p is None or p.failed_generation is not None:
        abandon(ctx)
        return
    p.started_at, p.step, p.since, p.failed_step, p.failures = None, None, None, None, 0
    ctx.op.slots.release(ctx.ref.uid)


async def roll_back(ctx: AgentContext, cause: errors.StepFailed | errors.Permanent) -> None:
    """Record the failure and when to retry, then delete the attempt's cloud objects (raises
    if incomplete). See the module docstring for which causes retry by themselves."""
    step = cause.step if isinstance(cause, errors.StepFailed) else "server"
    p = ctx.status.provisioning or ProvisioningStatus(attempt=1)
    p.failed_generation = ctx.generation
    p.retry_token = retry_token(ctx)
    p.failed_step = step
    p.rolled_back_at = None
    ctx.status.provisioning = p
    if isinstance(cause, errors.StepFailed):
        p.consecutive_failures += 1
        wait = backoff_seconds(p.consecutive_failures, ctx.config.attempt_backoff_max)
        p.next_attempt_at = _whole_second_after(ctx.now() + timedelta(seconds=wait))
        message = (
            f"{cause.reason}: {cause}. Rolled back; {_retry_phrase(p.next_attempt_at, wait)} "
            f"({p.consecutive_failures} failure(s) in a row)"
        )
        ctx.set(conditions.READY, FALSE, Reason.RETRYING_AFTER_FAILURE, message)
    else:
        p.next_attempt_at = None
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


def _retry_phrase(at: datetime, wait: float) -> str:
    return f"retrying at {at.isoformat()} (in {wait:.0f}s)"


def _whole_second_after(at: datetime) -> datetime:
    """`at` rounded up to a whole second, as Kubernetes stores and shows times."""
    whole = at.replace(microsecond=0)
    return whole + timedelta(seconds=1) if whole != at else whole
