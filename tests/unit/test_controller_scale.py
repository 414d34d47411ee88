"""One replica, many Agents: the provisioning queue is first come first served, and kopf runs
one worker per Agent by default (a waiting Agent must not hold a worker another one needs)."""

from __future__ import annotations

import kopf

from aura.controller.reconcile.context import Wait
from aura.controller.runtime import ProvisioningSlots
from aura.controller.settings import OperatorConfig, configure_kopf


def test_a_freed_slot_goes_to_the_head_of_the_queue_not_to_whoever_polls_first() -> None:
    slots = ProvisioningSlots(limit=1)
    assert slots.take("a")
    assert not slots.take("b") and not slots.take("c")  # b queued first, then c
    slots.release("a")
    assert not slots.take("c")  # c polls first, but b is ahead of it
    assert (slots.position("b"), slots.position("c")) == (1, 2)
    assert slots.take("b")
    assert slots.position("c") == 1


def test_a_queued_agent_that_stops_asking_loses_its_place() -> None:
    now = [0.0]
    slots = ProvisioningSlots(limit=1, stale_after=10, clock=lambda: now[0])
    assert slots.take("a")
    assert not slots.take("gone")  # queued, then never asks again (deleted, stopped)
    now[0] = 5
    assert not slots.take("b")
    slots.release("a")
    now[0] = 20  # b asks every poll; "gone" last asked 20 s ago
    assert slots.take("b")


def test_release_also_leaves_the_queue() -> None:
    slots = ProvisioningSlots(limit=1)
    assert slots.take("a") and not slots.take("b")
    slots.release("b")  # stopped while queued
    assert slots.position("b") == 0


def test_kopf_runs_one_worker_per_agent_by_default() -> None:
    settings = kopf.OperatorSettings()
    configure_kopf(settings, OperatorConfig())
    assert settings.queueing.worker_limit is None
    configure_kopf(settings, OperatorConfig(worker_limit=8))
    assert settings.queueing.worker_limit == 8


async def test_a_queued_agent_says_its_place_and_looks_again_later_the_further_back_it_is() -> None:
    from tests.unit.test_controller_reconcile import REF, World

    w = World(max_concurrent_provisions=2, poll_interval=5, health_interval=30)
    w.op.slots.holders |= {"busy-1", "busy-2"}  # both slots taken
    for i in range(4):  # four Agents queued before this one
        w.op.slots.take(f"early-{i}")
    await w.one_pass()  # first sight: Queued, no cloud call
    wait = await w.one_pass()
    assert isinstance(wait, Wait)
    server_ready = next(c for c in w.status.conditions if c.type == "ServerReady")
    assert server_ready.message == "waiting for a provisioning slot (position 5 of 5)"
    assert wait.delay == 15  # 3 rounds of 2 slots ahead of it: 3 poll intervals
    assert w.hetzner.calls.get("create_server", 0) == 0
    w.op.slots.holders.clear()
    for i in range(4):
        w.op.slots.release(f"early-{i}")
    assert isinstance(await w.one_pass(), Wait)  # now the head: it takes a slot and creates
    assert REF.uid in w.op.slots.holders and w.hetzner.calls["create_server"] == 1
