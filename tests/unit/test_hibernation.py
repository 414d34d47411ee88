"""Hibernation against the stateful fakes and the real checkpoint controller: when automatic
hibernation is due, and convergence when any pass's status write is lost (the operator
SIGKILLed after its cloud calls, before it wrote status)."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aura.controller import errors
from aura.controller.conditions import derive_phase
from aura.controller.reconcile import hibernate
from aura.hibernation_models import HibernationState, LifecyclePolicy
from aura.models import PLURAL, AgentSpec, DesiredState, Phase, ServerStatus
from tests.unit.test_controller_phase_property import _CheckpointController
from tests.unit.test_controller_reconcile import REF, World


def test_hibernate_after_comes_from_the_spec_else_the_flag_and_counts_from_stopped_at() -> None:
    w = World(hibernate_after=600)
    w.spec = AgentSpec(desired_state=DesiredState.STOPPED)
    ctx = w.ctx()
    assert hibernate.hibernate_after(ctx) == 600
    ctx.spec = AgentSpec(
        desired_state=DesiredState.STOPPED, lifecycle=LifecyclePolicy(hibernate_after="2h")
    )
    assert hibernate.hibernate_after(ctx) == 7200
    assert not hibernate.auto_due(ctx), "no server: nothing to hibernate"
    ctx.status.server = ServerStatus(id=7)
    ctx.status.stopped_at = ctx.now() - timedelta(seconds=7199)
    assert not hibernate.auto_due(ctx)
    ctx.status.stopped_at = ctx.now() - timedelta(seconds=7200)
    assert hibernate.auto_due(ctx)
    off = World()  # --hibernate-after 0 and no spec: never
    octx = off.ctx()
    octx.status.server, octx.status.stopped_at = ServerStatus(id=7), octx.now() - timedelta(days=99)
    assert not hibernate.auto_due(octx)


async def _passes(w: World, ckpts: _CheckpointController, lost: list[bool]) -> None:
    """One Agent pass and one checkpoint pass per flag; a True flag loses the Agent pass's
    status write and the process memory (a SIGKILL before the write)."""
    for crash in lost:
        stored = await ckpts.store.get(PLURAL, REF.namespace, REF.name) or {}
        w.status.checkpoint_in_progress = (stored.get("status") or {}).get("checkpointInProgress")
        before = w.status.model_copy(deep=True)
        with contextlib.suppress(errors.AuraError):
            await w.one_pass()
        if crash:
            w.status = before
            w.op.holds.clear()
            w.op.slots.holders.clear()
        await ckpts.run()
        w.boot_everything()
        for server in w.hetzner.servers.values():  # ACPI shutdowns complete
            if server.status == "stopping":
                w.hetzner.set_status(server.id, "off")


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lost=st.lists(st.booleans(), min_size=40, max_size=40))
def test_hibernate_and_wake_converge_whatever_status_writes_are_lost(lost: list[bool]) -> None:
    async def scenario() -> None:
        w = World(step_retries=5)
        ckpts = _CheckpointController(w)
        await w.converge()
        [old] = list(w.hetzner.servers)
        w.spec = AgentSpec(desired_state=DesiredState.HIBERNATED)
        w.generation += 1
        await _passes(w, ckpts, lost[:20])
        await _passes(w, ckpts, [False] * 30)
        assert derive_phase(w.status.conditions, w.spec.desired_state) == Phase.HIBERNATED
        hib = w.status.hibernation
        assert hib is not None and hib.state == HibernationState.HIBERNATED
        assert w.hetzner.servers == {}, "no server while hibernated"
        assert list(w.hetzner.images) == [hib.image_id], "one image, the checkpoint's"
        assert w.tailnet.devices == {}, "the device is removed (tailnetOnHibernate: remove)"

        w.spec = AgentSpec(desired_state=DesiredState.RUNNING)
        w.generation += 1
        await _passes(w, ckpts, lost[20:])
        await _passes(w, ckpts, [False] * 30)
        assert derive_phase(w.status.conditions, w.spec.desired_state) == Phase.RUNNING
        [new] = list(w.hetzner.servers)
        assert new != old
        assert w.hetzner.server_images[new] == hib.image_id, "woken from the checkpoint"
        assert list(w.hetzner.images) == [hib.image_id], "the checkpoint is intact"
        assert w.status.hibernation is None and w.status.server_source is None

    asyncio.run(scenario())


async def test_a_vanished_server_is_replaced_from_the_newest_ready_checkpoint() -> None:
    w = World()
    ckpts = _CheckpointController(w)
    await w.converge()
    [old] = list(w.hetzner.servers)
    now = w.clock()
    for name, image, age in (
        ("older", 1, timedelta(hours=5)),
        ("newest", 2, timedelta(minutes=125)),
    ):
        ckpts.store.put("agentcheckpoints", {
            "metadata": {"namespace": REF.namespace, "name": name},
            "spec": {"agentName": REF.name},
            "status": {"phase": "Succeeded", "readyToUse": True, "imageID": image,
                       "takenAt": (now - age).isoformat()},
        })  # fmt: skip
    await w.hetzner.delete_server(old)
    w.op.servers.forget(old)
    await w.converge()
    [event] = [m for _, reason, m in w.events.posted if reason == "ServerMissing"]
    assert "from checkpoint newest (image 2)" in event and "taken 2h05m ago" in event
    assert "changes since then are lost" in event
    [new] = list(w.hetzner.servers)
    assert w.hetzner.server_images[new] == 2
    assert w.status.server_source is None, "forgotten once Running"
