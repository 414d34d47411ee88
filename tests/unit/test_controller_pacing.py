"""Issue 15, items 1-2 on fakes: the provisioning line (FIFO, budget gate, Queued message),
probe-first health (no Hetzner call at steady state; a failing probe asks), the drift sweep's
period, and the shared server and device lists."""

from __future__ import annotations

import asyncio

import pytest

from aura.controller import conditions, naming
from aura.controller.clients.devicecache import DeviceCache
from aura.controller.clients.kube import AgentRef
from aura.controller.clients.ratelimit import Budget
from aura.controller.clients.servercache import ServerCache
from aura.controller.reconcile import drift, pacing
from aura.controller.reconcile.context import Done, Wait
from aura.controller.runtime import ProvisioningSlots
from aura.controller.settings import OperatorConfig
from tests.fakes.hetzner import FakeHetzner
from tests.fakes.tailnet import FakeTailnet
from tests.unit.test_controller_reconcile import World


class Ticks:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_slots_go_first_come_first_served_and_never_past_the_head() -> None:
    ticks = Ticks()
    slots = ProvisioningSlots(limit=1, clock=ticks)
    assert slots.take("a", ("2026-01-01T00:00:01Z", "ns/a")) == 0  # a free slot
    # b was created before c but asks after it: c still queues behind b.
    assert slots.take("c", ("2026-01-01T00:00:03Z", "ns/c")) == 1
    assert slots.take("b", ("2026-01-01T00:00:02Z", "ns/b")) == 1
    assert slots.take("c", ("2026-01-01T00:00:03Z", "ns/c")) == 2
    slots.release("a", succeeded=True)
    assert slots.take("c", ("2026-01-01T00:00:03Z", "ns/c")) == 2  # the slot is b's
    assert slots.take("b", ("2026-01-01T00:00:02Z", "ns/b")) == 0
    assert slots.holders == {"b"}


def test_an_agent_that_stops_asking_leaves_the_line() -> None:
    ticks = Ticks()
    slots = ProvisioningSlots(limit=1, clock=ticks)
    slots.take("holder", ("0", "h"))
    assert slots.take("gone", ("1", "g"), linger=10) == 1
    assert slots.take("next", ("2", "n"), linger=10) == 2
    slots.release("holder")
    ticks.now += 11  # "gone" was deleted without a release, or its passes stalled
    assert slots.take("next", ("2", "n"), linger=10) == 0


def test_the_budget_caps_the_slots_handed_out() -> None:
    slots = ProvisioningSlots(limit=20, clock=Ticks())
    assert slots.take("a", ("1", "a"), free=1) == 0
    assert slots.take("b", ("2", "b"), free=0) == 1
    assert slots.take("b", ("2", "b"), free=1) == 0


def test_the_line_measures_its_speed_from_finished_attempts() -> None:
    ticks = Ticks()
    slots = ProvisioningSlots(limit=5, clock=ticks)
    assert slots.rate() is None
    for i in range(5):
        slots.take(f"u{i}", (str(i), str(i)))
    for i in range(5):
        ticks.now += 2
        slots.release(f"u{i}", succeeded=True)
    assert slots.rate() == pytest.approx(0.5)


def test_estimate_is_the_slower_of_the_line_and_the_budget() -> None:
    assert pacing.estimate(10, None, None) is None
    assert pacing.estimate(10, 0.5, None) == pytest.approx(20)
    starved = Budget(limit=3600, reserve=360, available=0, refill=1.0, queued=0)
    assert pacing.estimate(10, 0.5, starved) == pytest.approx(10 * pacing.CALLS_PER_ATTEMPT)
    assert pacing.estimate(10, None, starved) == pytest.approx(40)


async def test_queued_agents_see_their_position_and_an_estimate() -> None:
    w = World(max_concurrent_provisions=1)
    other = AgentRef("ns", "first", "uid-first")
    w.op.slots.take(other.uid, ("2025-12-31T00:00:00Z", "ns/first"))  # holds the slot
    result = await w.one_pass()  # accepted
    result = await w.one_pass()
    assert isinstance(result, Wait) and result.reason == "queued"
    ready = conditions.get_condition(w.status.conditions, conditions.SERVER_READY)
    assert ready is not None and ready.reason == "Queued"
    assert ready.message.startswith("position 1 of 1 in the provisioning queue (1 of 1")
    assert "estimate pending" in ready.message
    assert w.hetzner.calls["create_server"] == 0
    w.op.slots.release(other.uid, succeeded=True)
    assert isinstance(await w.converge(), Done)
    assert w.hetzner.calls["create_server"] == 1


async def test_a_running_agent_costs_hetzner_nothing_while_its_probe_answers() -> None:
    w = World()
    assert isinstance(await w.converge(), Done)
    before = sum(w.hetzner.calls.values())
    for _ in range(50):  # 50 timer passes
        assert isinstance(await w.one_pass(), Done)
    assert sum(w.hetzner.calls.values()) == before
    assert w.tailnet.calls["list_devices"] + w.tailnet.calls["get_device"] <= 2


async def test_a_failing_probe_asks_hetzner_and_finds_the_server_powered_off() -> None:
    w = World()
    await w.converge()
    assert w.status.server is not None and w.status.server.id is not None
    server_id = w.status.server.id
    w.hetzner.set_status(server_id, "off")  # behind Aura's back
    w.wedged = True  # so the gateway stops answering
    gets = w.hetzner.calls["get_server"]
    result = await w.one_pass()
    assert isinstance(result, Wait)
    assert w.hetzner.calls["get_server"] == gets + 1
    assert "ServerPoweredOffExternally" in {reason for _, reason, _ in w.events.posted}
    w.wedged = False
    await w.one_pass()  # the next pass powers it on
    assert w.hetzner.calls["power_on"] == 1


async def test_a_failing_probe_finds_the_server_deleted_and_replaces_it() -> None:
    w = World()
    await w.converge()
    assert w.status.server is not None and w.status.server.id is not None
    first = w.status.server.id
    del w.hetzner.servers[first]
    w.wedged = True
    await w.one_pass()
    assert "ServerMissing" in {reason for _, reason, _ in w.events.posted}
    w.wedged = False
    assert isinstance(await w.converge(), Done)
    assert w.status.server is not None and w.status.server.id != first


async def test_a_probe_that_keeps_failing_does_not_ask_hetzner_every_pass() -> None:
    w = World(heal_restart_after=1e9, heal_reboot_after=1e9, heal_replace_after=1e9)
    await w.converge()
    w.wedged = True  # the server runs; only the gateway is broken
    gets = w.hetzner.calls["get_server"]
    for _ in range(20):
        await w.one_pass()
    assert w.hetzner.calls["get_server"] == gets + 1


@pytest.mark.parametrize("servers", [10, 49, 50, 51, 200, 777, 2000, 10000])
def test_the_drift_sweep_costs_at_most_its_share_per_agent_hour(servers: int) -> None:
    config = OperatorConfig()
    pages = -(-servers // 50)
    seconds = drift.period(config, servers, pages, None)
    assert config.drift_interval_min <= seconds <= config.drift_interval_max
    assert pages * 3600 / seconds / servers <= 0.1


def test_the_drift_sweep_slows_down_when_the_project_budget_runs_low() -> None:
    config = OperatorConfig()
    full = Budget(limit=3600, reserve=360, available=3000, refill=1.0, queued=0)
    low = Budget(limit=3600, reserve=360, available=500, refill=1.0, queued=0)
    assert drift.period(config, 200, 4, full) == pytest.approx(1440)
    assert drift.period(config, 200, 4, low) == pytest.approx(2880)


async def test_booting_servers_are_polled_through_one_shared_list() -> None:
    h = FakeHetzner()
    ids = []
    for i in range(30):
        ref = AgentRef("ns", f"a{i}", f"u{i}")
        created = await h.create_server(
            name=naming.server_name(ref), server_type="cx22", location="nbg1", image="i",
            labels=naming.server_labels(ref), user_data="",
        )  # fmt: skip
        ids.append(created.id)
    ticks = Ticks()
    cache = ServerCache(h, label_selector=naming.MANAGED_SELECTOR, max_age=5, clock=ticks)
    found = await asyncio.gather(*(cache.poll(i, 5) for i in ids))
    assert all(s is not None and s.status == "initializing" for s in found)
    assert h.calls["list_servers"] == 1 and h.calls["get_server"] == 0
    h.set_status(ids[0], "running")  # it leaves the list of servers in transition
    ticks.now += 6
    first = await cache.poll(ids[0], 5)
    assert first is not None and first.status == "running"
    assert h.calls["list_servers"] == 2 and h.calls["get_server"] == 1
    ticks.now += 1
    assert (await cache.poll(ids[1], 5)) is not None  # the list is young enough
    assert h.calls["list_servers"] == 2


async def test_one_device_list_serves_every_joining_agent() -> None:
    tailnet = FakeTailnet()
    devices = DeviceCache(tailnet)
    await asyncio.gather(*(devices.all(max_age=5) for _ in range(100)))
    assert tailnet.calls["list_devices"] == 1
    await devices.all(max_age=0)
    assert tailnet.calls["list_devices"] == 2


async def test_time_in_the_line_does_not_count_against_the_provisioning_deadline() -> None:
    w = World(max_concurrent_provisions=1, provision_deadline=60)
    w.op.slots.take("uid-first", ("2025-12-31T00:00:00Z", "ns/first"))
    await w.one_pass()  # accepted
    await w.one_pass()  # queued
    w.clock.advance(600)  # ten deadlines in the line
    assert isinstance(await w.one_pass(), Wait)
    assert w.status.provisioning is not None
    assert w.status.provisioning.failed_generation is None  # still queued, not failed
    ready = conditions.get_condition(w.status.conditions, conditions.SERVER_READY)
    assert ready is not None and ready.reason == "Queued"
    w.op.slots.release("uid-first")
    assert isinstance(await w.converge(), Done)
    assert w.status.provisioning is None  # the attempt ended well, no rollback
    assert w.hetzner.calls["delete_server"] == 0
