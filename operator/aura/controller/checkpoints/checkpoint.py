"""The AgentCheckpoint: Pending -> InProgress -> Succeeded | Failed, and its deletion.

    Pending     the Agent exists, has a server and is Running, Degraded, Stopped or Suspended;
                then it is held (hold.py) and the phase is InProgress
    InProgress  quiesce (consistent: stop the gateway service; a powered-off server is not
                started) -> create_image (adopted by label when a response was lost, never
                sent twice) -> wait for `available` -> start the gateway again -> release
    Succeeded   readyToUse, imageID, sizeGB, takenAt; the deletion policy stays on the image
    Failed      past failureDeadline or on a permanent error: the gateway is started again,
                the partial image deleted and the Agent released before the phase says so

Progress that must survive a crash is in status before the action it guards:
`gatewayStopped` is written before the stop is sent (so a later pass or the finalizer starts
the gateway again), the hold before anything touches the server, the image by its labels.
Deleting the object works from every phase: release, restart, delete the image (Delete).
"""

from __future__ import annotations

import contextlib

from aura.checkpoint_models import (
    AgentCheckpointSpec,
    AgentCheckpointStatus,
    CheckpointError,
    CheckpointMode,
    CheckpointPhase,
    CheckpointSource,
    DeletionPolicy,
)
from aura.controller import conditions, errors
from aura.controller.checkpoints import final, hold
from aura.controller.checkpoints.context import FAILURE, PROGRESSING, READY, ObjectContext
from aura.controller.checkpoints.labels import DELETION_POLICY, checkpoint_selector, image_labels
from aura.controller.clients.gateway_service import GatewayState, set_gateway
from aura.controller.conditions import FALSE, TRUE
from aura.controller.reconcile.context import DONE, StepResult, Wait
from aura.models import Phase
from aura.wire import parse_duration

HOLDABLE = {Phase.RUNNING, Phase.DEGRADED, Phase.STOPPED, Phase.SUSPENDED, Phase.HIBERNATING}
QUIESCED, ONLINE, POWERED_OFF = "GatewayQuiesced", "Online", "PoweredOff"


class Checkpoint(ObjectContext):
    spec: AgentCheckpointSpec
    status: AgentCheckpointStatus


def new(
    base: ObjectContext, spec: AgentCheckpointSpec, status: AgentCheckpointStatus
) -> Checkpoint:
    cx = Checkpoint(**vars(base))
    cx.spec, cx.status = spec, status
    cx.conditions = status.conditions
    return cx


def deadline(cx: Checkpoint) -> float:
    if cx.spec.failure_deadline:
        return parse_duration(cx.spec.failure_deadline)
    return cx.op.config.checkpoint_deadline


async def reconcile(cx: Checkpoint) -> StepResult:
    """One pass; returns Done or Wait; permanent problems end in phase Failed."""
    st = cx.status
    if st.phase == CheckpointPhase.SUCCEEDED:
        await _sync_policy_label(cx)
        return DONE
    if st.phase in (CheckpointPhase.FAILED, CheckpointPhase.ERASED):
        return DONE
    if st.phase is None:
        st.phase = CheckpointPhase.PENDING
        cx.set(PROGRESSING, TRUE, "Pending", f"waiting to checkpoint Agent {cx.spec.agent_name}")
        cx.set(READY, FALSE, "Pending", "not taken yet")
    age = (conditions.now() - cx.created).total_seconds()
    if st.error is None and age > deadline(cx):
        _begin_failure(
            cx, "DeadlineExceeded", f"checkpoint deadline of {deadline(cx):.0f}s exceeded"
        )
    if st.error is None:
        try:
            for step in (_ensure_agent, _ensure_held, _ensure_quiesced, _ensure_image,
                         _ensure_available, _ensure_resumed, _ensure_released):  # fmt: skip
                result = await step(cx)
                if isinstance(result, Wait):
                    return result
            return DONE
        except (errors.Permanent, errors.NotFound) as exc:
            reason = exc.reason if isinstance(exc, errors.Permanent) else "NotFound"
            _begin_failure(cx, reason, str(exc))
    return await _finish_failure(cx)


async def _ensure_agent(cx: Checkpoint) -> StepResult:
    agent = await cx.load_agent(cx.spec.agent_name)
    if cx.status.phase != CheckpointPhase.PENDING:
        return DONE
    # The final checkpoint (`final`) is taken *because* the Agent is being deleted.
    last = cx.name == final.final_name(cx.spec.agent_name, agent["metadata"]["uid"])
    if last and cx.agent_server_id() is not None:
        return DONE
    if agent["metadata"].get("deletionTimestamp") or agent["spec"].get("desiredState") == "deleted":
        raise errors.Permanent(
            f"Agent {cx.spec.agent_name} is being deleted", reason="AgentDeleted"
        )
    status = cx.agent_status()
    phase = status.phase
    mine = status.checkpoint_in_progress == cx.name  # held by us already (a pass was cut short)
    if cx.agent_server_id() is None or (phase not in HOLDABLE and not mine):
        message = (
            f"Agent {cx.spec.agent_name} is {phase.value if phase else 'new'}: a checkpoint "
            "starts once it is Running or Stopped"
        )
        cx.set(PROGRESSING, TRUE, "WaitingForAgent", message)
        return Wait(cx.op.config.poll_interval, message)
    return DONE


async def _ensure_held(cx: Checkpoint) -> StepResult:
    if cx.status.phase != CheckpointPhase.PENDING:
        return DONE
    ref = cx.agent_ref()
    busy = await hold.acquire(cx.op, ref.namespace, ref.name, ref.uid, hold.CHECKPOINT, cx.name)
    if busy:
        cx.set(PROGRESSING, TRUE, "WaitingForAgent", busy)
        return Wait(cx.op.config.poll_interval, busy)
    server_id = cx.agent_server_id()
    assert server_id is not None
    server = await cx.server(server_id)
    spec = cx.agent_context().spec
    cx.status.phase = CheckpointPhase.IN_PROGRESS
    cx.status.started_at = conditions.now()
    cx.status.source = CheckpointSource(
        agent_uid=ref.uid,
        server_id=server_id,
        server_type=server.server_type,
        location=server.location,
        openclaw_version=spec.runtime.openclaw_version,
        spec_generation=int(cx.agent["metadata"].get("generation") or 0) if cx.agent else None,
        powered_off=server.status == "off",
    )
    cx.set(PROGRESSING, TRUE, "InProgress", f"holding Agent {ref.name}")
    return Wait(0.1, "held: the phase is written before the server is touched")


async def _ensure_quiesced(cx: Checkpoint) -> StepResult:
    st = cx.status
    assert st.source is not None
    if cx.spec.mode == CheckpointMode.ONLINE:
        _indicate(cx, ONLINE)
        return DONE
    if st.source.powered_off:
        _indicate(cx, POWERED_OFF)  # snapshot the powered-off disk; never start it for this
        return DONE
    if QUIESCED in st.indications:
        return DONE
    if not st.gateway_stopped:
        st.gateway_stopped = True  # written before the stop, so a restart is never forgotten
        return Wait(0.1, "recording that the gateway will be stopped")
    try:
        await set_gateway(
            cx.op.gateway_service,
            await cx.gateway_target(),
            GatewayState.STOPPED,
            cx.op.config.configure_timeout,
        )
    except errors.Retryable as exc:
        cx.set(PROGRESSING, TRUE, "GatewayStopFailed", f"{exc}; retrying until the deadline")
        raise
    _indicate(cx, QUIESCED)
    cx.set(PROGRESSING, TRUE, "GatewayStopped", "gateway service stopped for the snapshot")
    return DONE


def _indicate(cx: Checkpoint, indication: str) -> None:
    if indication not in cx.status.indications:
        cx.status.indications.append(indication)


async def _ensure_image(cx: Checkpoint) -> StepResult:
    st = cx.status
    if st.image_id is not None:
        return DONE
    found = sorted(await cx.op.hetzner.list_images(checkpoint_selector(cx.uid)), key=lambda i: i.id)
    for extra in found[1:]:  # cannot happen unless created outside this controller
        with contextlib.suppress(errors.NotFound):
            await cx.op.hetzner.delete_image(extra.id)
    if found:
        st.image_id = found[0].id
        cx.log.info("adopted image %s of checkpoint %s", st.image_id, cx.name)
        return DONE
    assert st.source is not None
    assert st.source.server_id is not None
    image = await cx.op.hetzner.create_image(
        st.source.server_id,
        description=f"Aura checkpoint {cx.namespace}/{cx.name} of Agent {cx.spec.agent_name}",
        labels={
            **image_labels(cx.agent_ref(), cx.uid, cx.name, cx.spec.deletion_policy.value),
            **final.image_labels(cx.name, cx.agent),
        },
    )
    st.image_id = image.id
    cx.set(PROGRESSING, TRUE, "ImageCreating", f"image {image.id} is being created")
    return DONE


async def _ensure_available(cx: Checkpoint) -> StepResult:
    st = cx.status
    assert st.image_id is not None
    image = await cx.op.hetzner.get_image(st.image_id)
    if image.status == "creating":
        return Wait(cx.op.config.checkpoint_poll_interval, f"image {image.id} creating")
    if image.status != "available":
        raise errors.Permanent(f"image {image.id} is {image.status}", reason="ImageUnavailable")
    st.size_gb = image.image_size
    st.disk_size_gb = int(image.disk_size) if image.disk_size is not None else None
    st.taken_at = st.taken_at or conditions.now()
    return DONE


async def _ensure_resumed(cx: Checkpoint) -> StepResult:
    if cx.status.gateway_stopped:
        await set_gateway(
            cx.op.gateway_service,
            await cx.gateway_target(),
            GatewayState.STARTED,
            cx.op.config.configure_timeout,
        )
        cx.status.gateway_stopped = False
    return DONE


async def _ensure_released(cx: Checkpoint) -> StepResult:
    ref = cx.agent_ref()
    await hold.release(cx.op, ref.namespace, ref.name, ref.uid, hold.CHECKPOINT, cx.name)
    cx.released = True
    st = cx.status
    st.phase, st.ready_to_use = CheckpointPhase.SUCCEEDED, True
    took = (conditions.now() - st.started_at).total_seconds() if st.started_at else 0.0
    message = f"image {st.image_id} ({st.size_gb} GB) ready after {took:.0f}s"
    cx.set(READY, TRUE, "Succeeded", message)
    cx.set(PROGRESSING, FALSE, "Succeeded", message)
    cx.set(FAILURE, FALSE, "Succeeded", "")
    cx.event("Normal", "CheckpointSucceeded", f"checkpoint {cx.name}: {message}")
    return DONE


def _begin_failure(cx: Checkpoint, reason: str, message: str) -> None:
    cx.status.error = CheckpointError(time=conditions.now(), message=message)
    cx.status.ready_to_use = False
    cx.set(FAILURE, TRUE, reason, message)
    cx.set(PROGRESSING, FALSE, "Failing", "cleaning up: gateway, partial image, hold")
    cx.set(READY, FALSE, reason, message)
    cx.event("Warning", "CheckpointFailed", f"checkpoint {cx.name}: {message}")


async def _finish_failure(cx: Checkpoint) -> StepResult:
    """Undo everything in progress, then (and only then) say Failed."""
    await undo(cx, delete_image=True)
    cx.status.phase = CheckpointPhase.FAILED
    cx.set(PROGRESSING, FALSE, "Failed", cx.status.error.message if cx.status.error else "")
    return DONE


async def undo(cx: Checkpoint, *, delete_image: bool) -> None:
    """Start the gateway if we stopped it, release the Agent, delete the image if asked."""
    agent = None
    with contextlib.suppress(errors.Permanent):
        agent = await cx.load_agent(cx.spec.agent_name)
    mine = agent is not None and (
        cx.status.source is None or agent["metadata"]["uid"] == cx.status.source.agent_uid
    )
    if mine and cx.status.gateway_stopped:
        with contextlib.suppress(errors.NotFound):
            await _ensure_resumed(cx)
    cx.status.gateway_stopped = None if not mine else cx.status.gateway_stopped
    if mine:
        ref = cx.agent_ref()
        await hold.release(cx.op, ref.namespace, ref.name, ref.uid, hold.CHECKPOINT, cx.name)
        cx.released = True
    if delete_image:
        await delete_images(cx)


async def delete_images(cx: Checkpoint) -> None:
    """Delete this checkpoint's image(s): the recorded one and any labelled with its UID."""
    ids = {i.id for i in await cx.op.hetzner.list_images(checkpoint_selector(cx.uid))}
    if cx.status.image_id is not None:
        ids.add(cx.status.image_id)
    for image_id in sorted(ids):
        try:
            await cx.op.hetzner.delete_image(image_id)
        except errors.NotFound:
            pass
        except errors.Locked:
            raise errors.Locked(
                f"image {image_id} is still being created; it is deleted once Hetzner unlocks it",
                retry_after=cx.op.config.checkpoint_poll_interval,
            ) from None
        cx.log.info("deleted image %s of checkpoint %s", image_id, cx.name)
    cx.status.image_id = None


async def finalize(cx: Checkpoint) -> None:
    """Deleting the AgentCheckpoint, from any phase; raises Retryable until it is done."""
    cx.status.phase = CheckpointPhase.DELETING
    cx.status.ready_to_use = False
    await undo(cx, delete_image=cx.spec.deletion_policy == DeletionPolicy.DELETE)


async def _sync_policy_label(cx: Checkpoint) -> None:
    """deletionPolicy may change after the fact; the image's label (read by the sweeper and by
    people) follows it."""
    if cx.status.image_id is None:
        return
    try:
        image = await cx.op.hetzner.get_image(cx.status.image_id)
    except errors.NotFound:
        cx.status.ready_to_use = False
        cx.set(READY, FALSE, "ImageMissing", f"image {cx.status.image_id} was deleted")
        return
    wanted = cx.spec.deletion_policy.value
    if image.labels.get(DELETION_POLICY) != wanted:
        await cx.op.hetzner.update_image_labels(image.id, {**image.labels, DELETION_POLICY: wanted})
