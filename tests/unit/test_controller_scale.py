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


async def test_a_healthy_agents_probe_reads_its_token_secret_once() -> None:
    """A GET of the token Secret per probe was a sixth of the steady-state CPU: the token is
    kept while probes pass, and read again after one fails (it may have been rotated)."""
    from tests.unit.test_controller_reconcile import World

    w = World()
    reads: list[str] = []
    get = w.secrets.get

    async def counting_get(namespace: str, name: str) -> dict[str, str] | None:
        reads.append(name)
        return await get(namespace, name)

    w.secrets.get = counting_get  # type: ignore[method-assign]
    await w.converge()
    before = len(reads)
    for _ in range(20):  # 20 timer passes of a healthy Agent
        await w.one_pass()
    assert len(reads) == before
    token = w.handshakes[-1]
    assert token and all(t == token for t in w.handshakes[-20:])
    w.wedged = True
    await w.one_pass()  # fails with the kept token, drops it
    await w.one_pass()
    assert len(reads) == before + 1
