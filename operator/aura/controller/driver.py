"""Runs one reconcile pass for a kopf handler: build the context, reconcile, write back.

This is the only module between kopf and the reconcile steps. It

- parses the spec (an invalid one is a permanent, visible `InvalidSpec`),
- serialises passes of the same Agent (one asyncio lock per UID; the timer also skips Agents
  whose change handler has not converged),
- writes `status` once, and only the keys that changed, with the phase derived from the
  conditions and an Event (with the previous phase's duration) when the phase changes,
- hands every outcome but success and a wait-for-an-event to `errors.to_kopf`, once.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

import kopf
from prometheus_client import Gauge
from pydantic import ValidationError

from aura.controller import conditions, errors, metrics, naming
from aura.controller.clients.kube import AgentRef, post_events
from aura.controller.conditions import FALSE, Reason
from aura.controller.reconcile import agent
from aura.controller.reconcile.context import AgentContext, Logger, Wait
from aura.controller.runtime import Operator
from aura.models import AgentSpec, AgentStatus, DesiredState, Phase

_WARNING_PHASES = {Phase.FAILED, Phase.DEGRADED}


def _context(op: Operator, body: kopf.Body, spec: AgentSpec, logger: Logger) -> AgentContext:
    meta = body["metadata"]
    return AgentContext(
        op=op,
        ref=AgentRef(namespace=meta["namespace"], name=meta["name"], uid=meta["uid"]),
        spec=spec,
        generation=int(meta.get("generation") or 0),
        annotations=dict(meta.get("annotations") or {}),
        status=AgentStatus.model_validate(dict(body.get("status") or {})),
        log=logger,
        created=str(meta.get("creationTimestamp") or ""),
    )


async def drive(
    op: Operator,
    body: kopf.Body,
    patch: kopf.Patch,
    logger: Logger,
    *,
    trigger: str,
    finalizing: bool = False,
) -> None:
    """One pass for a change handler: raises kopf errors to retry or stop."""
    uid = body["metadata"]["uid"]
    op.memory.busy.add(uid)
    async with op.memory.locks[uid]:
        outcome = await _pass(op, body, patch, logger, trigger=trigger, finalizing=finalizing)
    if outcome is None or _final(outcome):
        op.memory.busy.discard(uid)  # converged or given up: the timer takes over
    raise_outcome(op, outcome)


def raise_outcome(op: Operator, outcome: object) -> None:
    """Hand a handler's outcome to kopf: nothing for Done (or None) or a wait for an event (no
    delay), else the kopf error that retries after the wait or the error's delay
    (`errors.to_kopf`)."""
    if not isinstance(outcome, Wait | errors.AuraError):
        return
    if isinstance(outcome, Wait) and outcome.delay is None:
        return
    raise errors.to_kopf(
        outcome,
        credentials_delay=op.config.credentials_retry_delay,
        default_delay=op.config.retry_backoff,
    )


def _final(outcome: Wait | errors.AuraError) -> bool:
    """Outcomes after which no retry comes: a permanent failure, or a wait for an event."""
    if isinstance(outcome, Wait):
        return outcome.delay is None
    return isinstance(outcome, errors.Permanent | errors.StepFailed)


async def drive_timer(op: Operator, body: kopf.Body, patch: kopf.Patch, logger: Logger) -> None:
    """One pass for the periodic timer: health, drift. Never raises for expected outcomes."""
    uid = body["metadata"]["uid"]
    if uid in op.memory.busy or op.memory.locks[uid].locked():
        return
    if not (body.get("status") or {}).get("conditions"):
        return  # never reconciled yet: its first pass is the change handler's, not a tick's
    async with op.memory.locks[uid]:
        outcome = await _pass(op, body, patch, logger, trigger="timer", finalizing=False)
    if isinstance(outcome, errors.AuraError):
        logger.warning("timer pass did not converge: %s", outcome)


async def _pass(
    op: Operator,
    body: kopf.Body,
    patch: kopf.Patch,
    logger: Logger,
    *,
    trigger: str,
    finalizing: bool,
) -> Wait | errors.AuraError | None:
    """Reconcile once and write status; returns Wait, the classified error, or None (Done)."""
    try:
        spec = AgentSpec.model_validate(dict(body.get("spec") or {}))
    except ValidationError as exc:
        spec = None
        invalid = str(exc).replace("\n", " ")[:1000]
    ctx = _context(op, body, spec or AgentSpec(), logger)
    before = ctx.status.model_copy(deep=True)
    started = time.monotonic()
    outcome: Wait | errors.AuraError | None = None
    try:
        if spec is None:
            ctx.set(conditions.READY, FALSE, Reason.INVALID_SPEC, invalid)
            outcome = errors.Permanent(invalid, reason=Reason.INVALID_SPEC)
        else:
            result = await (agent.finalize_agent(ctx) if finalizing else agent.reconcile_agent(ctx))
            outcome = result if isinstance(result, Wait) else None
    except errors.AuraError as exc:
        outcome = exc
    finally:
        await _write_status(ctx, before, patch, deleting=finalizing)
    result_label = "done" if outcome is None else type(outcome).__name__.lower()
    metrics.RECONCILES.labels(trigger, result_label).inc()
    # Expected outcomes (done, or a wait) log at INFO only when the phase moved: a pass that
    # merely polls a booting server, or a health tick that finds nothing new, is not news.
    expected = outcome is None or isinstance(outcome, Wait)
    quiet = expected and ctx.status.phase == before.phase
    logger.log(
        logging.DEBUG if quiet else logging.INFO,
        "%s pass %s at step %s",
        trigger,
        result_label,
        ctx.step or "-",
        extra={
            "agent": f"{ctx.ref.namespace}/{ctx.ref.name}",
            "trigger": trigger,
            "step": ctx.step or None,
            "duration_ms": round((time.monotonic() - started) * 1000, 1),
            "outcome": result_label,
            "detail": str(outcome)[:300] if outcome is not None else None,
            "phase": ctx.status.phase.value if ctx.status.phase else None,
        },
    )
    return outcome


async def _write_status(
    ctx: AgentContext, before: AgentStatus, patch: kopf.Patch, *, deleting: bool
) -> None:
    status = ctx.status
    desired = DesiredState.DELETED if deleting else ctx.spec.desired_state
    phase = conditions.derive_phase(status.conditions, desired)
    if phase != before.phase:
        now = ctx.now()  # sub-second precision: phases can be short in a sandbox
        took = (now - before.phase_since).total_seconds() if before.phase_since else 0.0
        if before.phase is not None:
            metrics.PHASE_SECONDS.labels(before.phase.value).observe(took)
        previous = before.phase.value if before.phase else "(new)"
        ctx.event(
            "Warning" if phase in _WARNING_PHASES else "Normal",
            phase.value,
            f"{previous} -> {phase.value} after {took:.1f}s in {previous}",
        )
        status.phase, status.phase_since = phase, now
    _count_phase(ctx.ref.uid, phase, ctx)
    status.observed_generation = ctx.generation
    ready = conditions.get_condition(status.conditions, conditions.READY)
    status.message = ready.message if ready is not None else None
    old = before.model_dump(mode="json", by_alias=True, exclude_none=True)
    new = status.model_dump(mode="json", by_alias=True, exclude_none=True)
    for key, value in merge_patch(old, new).items():
        patch.status[key] = value
    await post_events(ctx.op.events, ctx.ref, ctx.events, ctx.log)
    ctx.events.clear()


def merge_patch(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The JSON merge patch (RFC 7386) that turns `old` into `new`.

    Keys that disappeared become None (merge patch's "delete"), also inside nested objects:
    assigning a whole new dict would merge into the old one and keep its stale keys.
    """
    out: dict[str, Any] = {}
    for key in sorted(set(old) | set(new)):
        before, after = old.get(key), new.get(key)
        if before == after:
            continue
        if isinstance(before, dict) and isinstance(after, dict):
            out[key] = merge_patch(before, after)
        else:
            out[key] = after
    return out


def _count_phase(uid: str, phase: Phase, ctx: AgentContext) -> None:
    previous = ctx.op.memory.phases.get(uid)
    if previous == phase.value:
        return
    ref = ctx.ref
    if previous is not None:
        metrics.AGENTS_BY_PHASE.labels(previous).dec()
        _drop_series(metrics.PHASE_SINCE, ref.namespace, ref.name, previous)
    metrics.AGENTS_BY_PHASE.labels(phase.value).inc()
    since = ctx.status.phase_since or ctx.now()
    metrics.PHASE_SINCE.labels(ref.namespace, ref.name, phase.value).set(since.timestamp())
    ctx.op.memory.phases[uid] = phase.value


def _drop_series(gauge: Gauge, *labels: str) -> None:
    with contextlib.suppress(KeyError):  # never set in this process
        gauge.remove(*labels)


async def runtime_secret_changed(
    op: Operator, namespace: str, body: kopf.Body, agents: list[str], logger: Logger
) -> None:
    """The Secret `body` appeared or changed: start a pass of each Agent waiting for it.

    `agents` are the Agents whose `spec.runtime.secretRef` names it and that have no server
    yet (the `runtime_secrets` index). Setting `naming.RUNTIME_SECRET_ANNOTATION` to the
    Secret's resourceVersion is a change kopf hands to the Agent's change handler at once.
    """
    if op.agents is None:
        return
    version = str(body.get("metadata", {}).get("resourceVersion", ""))
    for name in sorted(set(agents)):
        try:
            await op.agents.annotate_agent(
                namespace, name, naming.RUNTIME_SECRET_ANNOTATION, version
            )
        except errors.NotFound:
            continue  # deleted meanwhile
        secret = body["metadata"]["name"]
        logger.info("runtime Secret %s changed: reconciling Agent %s", secret, name)


def forget(op: Operator, body: kopf.Body) -> None:
    """Drop per-process memory of an Agent that no longer exists."""
    uid = body["metadata"]["uid"]
    previous = op.memory.forget(uid)
    if previous is not None:
        metrics.AGENTS_BY_PHASE.labels(previous).dec()
        meta = body["metadata"]
        _drop_series(metrics.PHASE_SINCE, meta["namespace"], meta["name"], previous)
    op.slots.release(uid)
