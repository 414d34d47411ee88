"""The phase says what is true, for every desired state and every state of the world.

Each example brings an Agent (through the real reconcile, against the stateful fakes) to one
of the states the world can be in (no server yet, server on, server off, attempt rolled back,
server deleted behind our back), then sets a desired state and converges. The phase must
match what exists: nothing runs while Stopped or Suspended, a server runs while Running, a
rolled-back attempt shows Failed, and nothing is left Stopping with no server to stop.
Hibernated means no server at all, and a server's data in exactly one ready image; the real
checkpoint controller takes the hibernation checkpoints (`_CheckpointController`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from aura.checkpoint_models import CHECKPOINT_PLURAL, AgentCheckpointSpec, AgentCheckpointStatus
from aura.configure.base import ConfigResult
from aura.controller import errors
from aura.controller.checkpoints import checkpoint
from aura.controller.checkpoints.context import ObjectContext, dump
from aura.controller.conditions import derive_phase
from aura.models import PLURAL, AgentSpec, DesiredState, Phase
from tests.fakes.checkpoints import FakeCheckpointStore
from tests.unit.test_controller_reconcile import REF, World

WORLDS = ("none", "on", "off", "rolled_back", "vanished")


async def _bring_to(w: World, world: str) -> None:
    if world == "none":
        await w.one_pass()  # seen, nothing created yet
        return
    if world == "rolled_back":
        w.configurator.results = [ConfigResult(ok=False, message="apt failed")] * 9
        for _ in range(40):
            with contextlib.suppress(errors.Retryable):
                await w.one_pass()
            w.boot_everything()
            p = w.status.provisioning
            if p is not None and p.rolled_back_at is not None:
                return
        raise AssertionError("never rolled back")
    await w.converge()
    server = next(iter(w.hetzner.servers.values()))
    if world == "off":
        w.spec = AgentSpec(desired_state=DesiredState.STOPPED)
        for _ in range(10):
            await w.one_pass()
            w.hetzner.set_status(server.id, "off")
    elif world == "vanished":
        await w.hetzner.delete_server(server.id)
        w.op.servers.forget(server.id)  # the shared list's max age has passed


class _CheckpointController:
    """The real checkpoint reconcile over the fake store, as its kopf handler would run it; the
    Agent object it reads mirrors the World's status (phase derived, as the driver writes it)."""

    def __init__(self, w: World) -> None:
        self.w = w
        self.store = FakeCheckpointStore()
        w.op.checkpoints = self.store
        self.objects: dict[str, Any] = {}

    async def run(self) -> None:
        w = self.w
        status = w.status.model_copy(deep=True)
        status.phase = derive_phase(status.conditions, w.spec.desired_state)
        # The hold lives in the Agent's status on the apiserver, written by the checkpoint.
        stored = await self.store.get(PLURAL, REF.namespace, REF.name) or {}
        status.checkpoint_in_progress = (stored.get("status") or {}).get("checkpointInProgress")
        self.store.put(PLURAL, {
            "metadata": {"namespace": REF.namespace, "name": REF.name, "uid": REF.uid},
            "spec": w.spec.model_dump(mode="json", by_alias=True, exclude_none=True),
            "status": status.model_dump(mode="json", by_alias=True, exclude_none=True),
        })  # fmt: skip
        for item in await self.store.list(CHECKPOINT_PLURAL, REF.namespace):
            name = item["metadata"]["name"]
            if name not in self.objects:
                st = AgentCheckpointStatus()
                base = ObjectContext(
                    op=w.op, namespace=REF.namespace, name=name, uid=item["metadata"]["uid"],
                    generation=1, created=datetime.now(UTC), log=logging.getLogger("test"),
                    conditions=st.conditions,
                )  # fmt: skip
                spec = AgentCheckpointSpec.model_validate(item["spec"])
                self.objects[name] = checkpoint.new(base, spec, st)
            cx = self.objects[name]
            with contextlib.suppress(errors.AuraError):
                await checkpoint.reconcile(cx)
            await self.store.patch_status(CHECKPOINT_PLURAL, REF.namespace, name, dump(cx.status))
        w.hetzner.finish_images()


async def _settle(w: World, checkpoints: _CheckpointController) -> None:
    for _ in range(40):
        with contextlib.suppress(errors.Retryable):
            await w.one_pass()
        await checkpoints.run()
        w.boot_everything()
        for server in w.hetzner.servers.values():  # ACPI shutdowns complete
            if server.status == "stopping":
                w.hetzner.set_status(server.id, "off")


def _expected(world: str, desired: DesiredState, servers_running: int) -> set[Phase]:
    if desired == DesiredState.DELETED:
        return {Phase.DELETED}
    if desired == DesiredState.STOPPED:
        return {Phase.STOPPED}
    if desired == DesiredState.SUSPENDED:
        return {Phase.SUSPENDED}
    if desired == DesiredState.HIBERNATED:
        return {Phase.HIBERNATED}
    if world == "rolled_back":
        return {Phase.FAILED}  # retrying by itself later, or waiting for the user
    return {Phase.RUNNING}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(world=st.sampled_from(WORLDS), desired=st.sampled_from(list(DesiredState)))
@example(world="on", desired=DesiredState.HIBERNATED)  # the data goes into an image
@example(world="vanished", desired=DesiredState.HIBERNATED)  # nothing left to save
def test_phase_matches_what_exists(world: str, desired: DesiredState) -> None:
    async def scenario() -> None:
        w = World(step_retries=1, attempt_backoff_max=3000)
        checkpoints = _CheckpointController(w)
        await _bring_to(w, world)
        w.spec = AgentSpec(desired_state=desired)
        w.generation += 0 if world == "rolled_back" else 1  # a rolled back one stays failed
        await _settle(w, checkpoints)
        running = [s for s in w.hetzner.servers.values() if s.status == "running"]
        phase = derive_phase(w.status.conditions, desired)
        assert phase in _expected(world, desired, len(running)), (world, desired, phase)
        if phase in (Phase.STOPPED, Phase.SUSPENDED, Phase.DELETED, Phase.FAILED):
            assert running == []  # nothing runs (and bills compute) that should not
        if phase == Phase.RUNNING:
            assert len(running) == 1
        if phase == Phase.HIBERNATED:
            assert w.hetzner.servers == {}, "a hibernated Agent has no server to bill"
            hib = w.status.hibernation
            assert hib is not None
            had_data = world in ("on", "off")
            assert list(w.hetzner.images) == ([hib.image_id] if had_data else [])

    asyncio.run(scenario())
