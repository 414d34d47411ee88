"""The AgentRestore: rebuild an Agent's server in place from one of its checkpoints.

    Pending     the checkpoint is readyToUse and of this Agent; the Agent is stopped, or the
                targetReadinessPolicy says what to do: WaitGracePeriod (wait for its owner to
                stop it, at most gracePeriod), StopTarget (power it off ourselves, under the
                hold), FailImmediate; then the Agent is held (phase Restoring)
    InProgress  power off if needed -> `rebuild` from the image (same server, same public IPs;
                the disk, the gateway's data and the tailnet identity come back) -> wait for the
                action -> release; the Agent's own reconcile then takes the normal path back to
                its desiredState (Starting -> Running)
    Succeeded   complete, restoreTime
    Failed      error; the hold is released

A crash between the rebuild call and recording its action repeats the rebuild from the same
image once; the outcome is the same disk.
"""

from __future__ import annotations

from aura.checkpoint_models import (
    CHECKPOINT_PLURAL,
    AgentRestoreSpec,
    AgentRestoreStatus,
    CheckpointError,
    ReadinessPolicy,
    RestorePhase,
)
from aura.controller import conditions, errors
from aura.controller.checkpoints import hold
from aura.controller.checkpoints.context import FAILURE, PROGRESSING, READY, ObjectContext
from aura.controller.conditions import FALSE, TRUE
from aura.controller.reconcile import cloudinit, secrets, tailnet
from aura.controller.reconcile.context import DONE, StepResult, Wait
from aura.wire import parse_duration


class Restore(ObjectContext):
    spec: AgentRestoreSpec
    status: AgentRestoreStatus


def new(base: ObjectContext, spec: AgentRestoreSpec, status: AgentRestoreStatus) -> Restore:
    rx = Restore(**vars(base))
    rx.spec, rx.status = spec, status
    rx.conditions = status.conditions
    return rx


async def reconcile(rx: Restore) -> StepResult:
    st = rx.status
    if st.phase in (RestorePhase.SUCCEEDED, RestorePhase.FAILED):
        return DONE
    if st.phase is None:
        st.phase, st.started_at = RestorePhase.PENDING, conditions.now()
        rx.set(PROGRESSING, TRUE, "Pending", f"restoring {rx.spec.checkpoint_name}")
        rx.set(READY, FALSE, "Pending", "")
    if st.error is None:
        try:
            for step in (_ensure_checkpoint, _ensure_target_ready, _ensure_held,
                         _ensure_powered_off, _ensure_rebuilt, _ensure_released):  # fmt: skip
                result = await step(rx)
                if isinstance(result, Wait):
                    return result
            return DONE
        except (errors.Permanent, errors.NotFound) as exc:
            reason = exc.reason if isinstance(exc, errors.Permanent) else "NotFound"
            st.error = CheckpointError(time=conditions.now(), message=str(exc))
            rx.set(FAILURE, TRUE, reason, str(exc))
            rx.set(READY, FALSE, reason, str(exc))
            rx.event("Warning", "RestoreFailed", f"restore {rx.name}: {exc}")
    await _release(rx)
    st.phase, st.complete = RestorePhase.FAILED, False
    rx.set(PROGRESSING, FALSE, "Failed", st.error.message if st.error else "")
    return DONE


async def _ensure_checkpoint(rx: Restore) -> StepResult:
    await rx.load_agent(rx.spec.agent_name)
    name = rx.spec.checkpoint_name
    found = await rx.store.get(CHECKPOINT_PLURAL, rx.namespace, name)
    if found is None:
        raise errors.Permanent(f"AgentCheckpoint {name} not found", reason="CheckpointNotFound")
    if found["spec"].get("agentName") != rx.spec.agent_name:
        raise errors.Permanent(
            f"AgentCheckpoint {name} is of Agent {found['spec'].get('agentName')}, not "
            f"{rx.spec.agent_name}: create a new Agent from it (spec.source) instead",
            reason="CheckpointOfAnotherAgent",
        )
    status = found.get("status") or {}
    if status.get("phase") == "Failed":
        raise errors.Permanent(f"AgentCheckpoint {name} failed", reason="CheckpointFailed")
    if not status.get("readyToUse") or status.get("imageID") is None:
        rx.set(PROGRESSING, TRUE, "WaitingForCheckpoint", f"{name} is not readyToUse yet")
        return Wait(rx.op.config.poll_interval, f"checkpoint {name} not ready")
    rx.status.image_id = int(status["imageID"])
    return DONE


def _server_id(rx: Restore) -> int:
    server_id = rx.agent_server_id()
    if server_id is None:
        raise errors.Permanent(
            f"Agent {rx.spec.agent_name} has no server to restore onto", reason="NoServer"
        )
    return server_id


async def _ensure_target_ready(rx: Restore) -> StepResult:
    if rx.status.phase != RestorePhase.PENDING:
        return DONE
    server = await rx.server(_server_id(rx))
    policy = rx.spec.target_readiness_policy
    if server.status == "off" or policy == ReadinessPolicy.STOP_TARGET:
        return DONE
    agent = rx.spec.agent_name
    if policy == ReadinessPolicy.FAIL_IMMEDIATE:
        raise errors.Permanent(
            f"Agent {agent} is not stopped (targetReadinessPolicy FailImmediate): set its "
            "desiredState to stopped first, or use StopTarget",
            reason="TargetNotReady",
        )
    grace = parse_duration(rx.spec.grace_period)
    started = rx.status.started_at or conditions.now()
    if (conditions.now() - started).total_seconds() > grace:
        raise errors.Permanent(
            f"Agent {agent} did not stop within the grace period of {rx.spec.grace_period}",
            reason="TargetNotReady",
        )
    message = f"waiting up to {rx.spec.grace_period} for Agent {agent} to be stopped"
    rx.set(PROGRESSING, TRUE, "WaitingForTarget", message)
    return Wait(rx.op.config.poll_interval, message)


async def _ensure_held(rx: Restore) -> StepResult:
    if rx.status.phase != RestorePhase.PENDING:
        return DONE
    ref = rx.agent_ref()
    busy = await hold.acquire(rx.op, ref.namespace, ref.name, ref.uid, hold.RESTORE, rx.name)
    if busy:
        rx.set(PROGRESSING, TRUE, "WaitingForAgent", busy)
        return Wait(rx.op.config.poll_interval, busy)
    rx.status.phase = RestorePhase.IN_PROGRESS
    rx.set(PROGRESSING, TRUE, "InProgress", f"holding Agent {ref.name}")
    return Wait(0.1, "held: the phase is written before the server is touched")


async def _ensure_powered_off(rx: Restore) -> StepResult:
    if rx.status.rebuild_action_id is not None:
        return DONE
    server = await rx.op.hetzner.get_server(_server_id(rx))
    if server.status == "off":
        return DONE
    if server.status == "running":
        await rx.op.hetzner.power_off(server.id)  # the disk is replaced: no need to be gentle
        rx.status.stopped_by_restore = True
        rx.event("Normal", "RestoreStoppedAgent", f"powered off server {server.id} to restore")
    return Wait(rx.op.config.poll_interval, f"server {server.id} is {server.status}")


async def _ensure_rebuilt(rx: Restore) -> StepResult:
    st = rx.status
    assert st.image_id is not None
    if st.rebuild_action_id is None:
        user_data = await _rekey_if_device_removed(rx)
        st.rebuild_action_id = await rx.op.hetzner.rebuild_server(
            _server_id(rx), st.image_id, user_data
        )
        rx.set(PROGRESSING, TRUE, "Rebuilding", f"rebuilding from image {st.image_id}")
        return Wait(rx.op.config.poll_interval, "rebuild started")
    state = await rx.op.hetzner.action_status(st.rebuild_action_id)
    if state == "running":
        return Wait(rx.op.config.poll_interval, "rebuilding")
    if state != "success":
        raise errors.Permanent(f"rebuild action {st.rebuild_action_id} ended {state}",
                               reason="RebuildFailed")  # fmt: skip
    rx.op.servers.forget(_server_id(rx))
    return DONE


async def _rekey_if_device_removed(rx: Restore) -> str | None:
    """The image brings the tailnet node key back; if its device was removed from the tailnet
    meanwhile that key is dead, and the host (whose public SSH is closed) can only rejoin from
    inside: a cloud-init document with a fresh auth key for the rebuild's boot. Same host keys,
    same hostname; the spent key's Secret is replaced."""
    ctx = rx.agent_context()
    if await tailnet.find_devices(ctx):
        return None
    await secrets.delete_tailnet_key(ctx)
    key = await secrets.ensure_tailnet_key(ctx)
    ssh = await secrets.ensure_ssh_material(ctx)
    rx.event("Normal", "TailnetRekey", "the device was removed since the checkpoint: re-keying")
    return cloudinit.render(
        cloudinit.CloudInit(
            hostname=ctx.hostname,
            auth_key=key.key,
            ssh_user=ctx.config.ssh_user,
            authorized_key=ssh.client_public_key,
            host_private_key=ssh.host_private_key,
            host_public_key=ssh.host_public_key,
            fresh_identity=True,
        )
    )


async def _ensure_released(rx: Restore) -> StepResult:
    await _release(rx)
    st = rx.status
    st.phase, st.complete, st.restore_time = RestorePhase.SUCCEEDED, True, conditions.now()
    message = f"server rebuilt from {rx.spec.checkpoint_name} (image {st.image_id})"
    rx.set(READY, TRUE, "Succeeded", message)
    rx.set(PROGRESSING, FALSE, "Succeeded", message)
    rx.set(FAILURE, FALSE, "Succeeded", "")
    rx.event("Normal", "Restored", message)
    return DONE


async def _release(rx: Restore) -> None:
    if rx.agent is None:
        try:
            await rx.load_agent(rx.spec.agent_name)
        except errors.Permanent:
            return
    ref = rx.agent_ref()
    await hold.release(rx.op, ref.namespace, ref.name, ref.uid, hold.RESTORE, rx.name)
    rx.released = True


async def finalize(rx: Restore) -> None:
    """Deleting an AgentRestore releases its Agent; a rebuild already sent runs to its end."""
    await _release(rx)
