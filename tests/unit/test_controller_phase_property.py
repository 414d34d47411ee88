"""The phase says what is true, for every desired state and every state of the world.

Each example brings an Agent (through the real reconcile, against the stateful fakes) to one
of the states the world can be in (no server yet, server on, server off, attempt rolled back,
server deleted behind our back), then sets a desired state and converges. The phase must
match what exists: nothing runs while Stopped or Suspended, a server runs while Running, a
rolled-back attempt shows Failed, and nothing is left Stopping with no server to stop.
"""

from __future__ import annotations

import asyncio
import contextlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aura.configure.base import ConfigResult
from aura.controller import errors
from aura.controller.conditions import derive_phase
from aura.models import AgentSpec, DesiredState, Phase
from tests.unit.test_controller_reconcile import World

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


async def _settle(w: World) -> None:
    for _ in range(30):
        with contextlib.suppress(errors.Retryable):
            await w.one_pass()
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
    if world == "rolled_back":
        return {Phase.FAILED}  # retrying by itself later, or waiting for the user
    return {Phase.RUNNING}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(world=st.sampled_from(WORLDS), desired=st.sampled_from(list(DesiredState)))
def test_phase_matches_what_exists(world: str, desired: DesiredState) -> None:
    async def scenario() -> None:
        w = World(step_retries=1, attempt_backoff_max=3000)
        await _bring_to(w, world)
        w.spec = AgentSpec(desired_state=desired)
        w.generation += 0 if world == "rolled_back" else 1  # a rolled back one stays failed
        await _settle(w)
        running = [s for s in w.hetzner.servers.values() if s.status == "running"]
        phase = derive_phase(w.status.conditions, desired)
        assert phase in _expected(world, desired, len(running)), (world, desired, phase)
        if phase in (Phase.STOPPED, Phase.SUSPENDED, Phase.DELETED, Phase.FAILED):
            assert running == []  # nothing runs (and bills compute) that should not
        if phase == Phase.RUNNING:
            assert len(running) == 1

    asyncio.run(scenario())
