"""One replica, many Agents: a queued Agent far back in the line looks again less often, and
kopf runs one worker per Agent by default (a waiting Agent must not hold a worker another one
needs). The line's order itself: test_controller_pacing.py."""

from __future__ import annotations

import kopf

from aura.controller.reconcile.context import Wait
from aura.controller.settings import OperatorConfig, configure_kopf


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
    assert server_ready.message.startswith("position 5 of 5 in the provisioning queue")
    assert wait.delay == 15  # no estimate yet; 3 rounds of 2 slots: 3 poll intervals
    assert w.hetzner.calls.get("create_server", 0) == 0
    w.op.slots.holders.clear()
    for i in range(4):
        w.op.slots.release(f"early-{i}")
    assert isinstance(await w.one_pass(), Wait)  # now the head: it takes a slot and creates
    assert REF.uid in w.op.slots.holders and w.hetzner.calls["create_server"] == 1
