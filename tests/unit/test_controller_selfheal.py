"""No wait without a bound: an Agent stopped half-provisioned, or whose tailnet device is gone,
comes back by itself; and the fleet short-circuit's second trigger (probes failing across many
servers within a minute). Against the fakes, timed by the injected clock."""

from __future__ import annotations

from datetime import timedelta

from aura.controller.conditions import Reason, reason_of
from aura.controller.healing_fleet import BURST_WINDOW, FleetHealing
from aura.controller.reconcile.context import Done
from aura.models import AgentSpec, DesiredState
from tests.unit.test_controller_reconcile import World
from tests.unit.test_controller_repair import T1, T2, T3, FakeGatewayService

JOIN_TIMEOUT = 300


def _reason(w: World, type_: str) -> str | None:
    return reason_of(w.status.conditions, type_)


async def _waiting_for_the_device(w: World) -> None:
    """Provision until the attempt waits in the tailnet step: the server runs, no device."""
    for _ in range(10):
        await w.one_pass()
        for server in w.hetzner.servers.values():
            if server.status in ("initializing", "starting"):
                w.hetzner.set_status(server.id, "running")  # boots, but never joins
        p = w.status.provisioning
        if _reason(w, "TailnetJoined") == Reason.WAITING_FOR_DEVICE and p and p.step == "tailnet":
            return
    raise AssertionError(f"never waited for the device: {w.status.conditions}")


async def test_a_stop_before_the_device_joined_pauses_the_attempt_and_a_start_times_it_again() -> (
    None
):
    w = World(tailnet_join_timeout=JOIN_TIMEOUT, attempt_backoff_max=30)
    await _waiting_for_the_device(w)
    [first] = w.hetzner.servers
    w.spec = AgentSpec(desired_state=DesiredState.STOPPED)
    for _ in range(3):
        await w.one_pass()
        w.hetzner.set_status(first, "off")
    p = w.status.provisioning
    assert p is not None and p.started_at is None and p.failed_generation is None  # paused
    assert w.op.slots.holders == set()
    w.clock.advance(10 * JOIN_TIMEOUT)  # a long stop: none of it counts against the attempt

    w.spec = AgentSpec(desired_state=DesiredState.RUNNING)
    await _waiting_for_the_device(w)  # powered on; the VM will not run `tailscale up` again
    p = w.status.provisioning
    assert p is not None and p.started_at == w.clock.at and p.step == "tailnet"
    w.clock.advance(JOIN_TIMEOUT)
    await w.one_pass()
    assert _reason(w, "Ready") == Reason.WAITING_FOR_DEVICE  # still within the join timeout
    w.clock.advance(1)
    await w.one_pass()
    assert _reason(w, "Ready") == Reason.RETRYING_AFTER_FAILURE
    assert first not in w.hetzner.servers  # rolled back
    assert w.status.provisioning is not None
    assert w.status.provisioning.next_attempt_at is not None
    w.clock.at = w.status.provisioning.next_attempt_at
    assert isinstance(await w.converge(), Done)
    assert len(w.hetzner.servers) == 1 and first not in w.hetzner.servers
    assert len(w.tailnet.devices) == 1


async def test_a_device_gone_while_stopped_is_an_unreachable_server_for_the_ladder() -> None:
    w = World(heal_restart_after=T1, heal_reboot_after=T2, heal_replace_after=T3)
    service = FakeGatewayService(w)
    w.op.gateway_service = service
    assert isinstance(await w.converge(), Done)
    [first] = w.hetzner.servers
    w.spec = AgentSpec(desired_state=DesiredState.STOPPED)
    for _ in range(3):
        await w.one_pass()
        w.hetzner.set_status(first, "off")
    w.tailnet.devices.clear()  # deleted in the admin console (or expired) meanwhile
    w.spec = AgentSpec(desired_state=DesiredState.RUNNING)
    for _ in range(3):
        await w.one_pass()
        w.hetzner.set_status(first, "running")
    assert w.status.provisioning is None  # it served before: no attempt, the ladder's case
    assert _reason(w, "TailnetJoined") == Reason.WAITING_FOR_DEVICE
    assert _reason(w, "Healthy") == Reason.GATEWAY_UNHEALTHY
    assert any(e[1] == "Unreachable" for e in w.events.posted)
    assert w.status.healing is not None and w.status.healing.unhealthy_since is not None

    from aura.controller import errors

    service.fail = errors.Retryable("ssh: connect to host: no route")
    w.clock.advance(T1)
    await w.one_pass()  # restart: the host cannot be reached, so it fails ...
    await w.one_pass()  # ... and the reboot is due at once
    assert [r.rung.value for r in w.status.healing.repairs] == ["restart", "reboot"]
    assert w.hetzner.reboots == [first]
    w.clock.advance(T3)
    await w.one_pass()  # still no device: replace (a new attempt, a fresh key)
    assert first not in w.hetzner.servers
    assert isinstance(await w.converge(), Done)
    assert len(w.hetzner.servers) == 1 and len(w.tailnet.devices) == 1
    assert any(e[1] == "Repaired" for e in w.events.posted)


def test_probes_failing_across_many_servers_within_a_minute_pause_repairs() -> None:
    from datetime import UTC, datetime

    fleet = FleetHealing(max_share=0.4)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    phases = {f"a{i}": "Running" for i in range(10)}
    # Flapping: at no moment are many Degraded, but 5 of 10 servers failed within the minute.
    for i in range(5):
        fleet.probe_failed(f"a{i}", 100 + i, now + timedelta(seconds=10 * i))
    at = now + timedelta(seconds=45)
    assert not fleet.short_circuited(phases)
    assert fleet.burst(phases, at) == (5, 10)
    why = fleet.pause_reason(phases, at)
    assert why is not None and "5 servers of 10 Agents within 60s" in why
    # Four servers are not over 40%: a local fault, repairs run.
    fleet.failed_probes.pop("a4")
    assert fleet.pause_reason(phases, at) is None
    # The failures age out of the window: repairs resume by themselves.
    fleet.probe_failed("a4", 104, now)
    later = now + timedelta(seconds=BURST_WINDOW + 31)
    assert fleet.pause_reason(phases, later) is None
    assert fleet.failed_probes == {}
    # Two servers of four are not "many" (the share trigger judges a small fleet).
    small = {f"a{i}": "Running" for i in range(4)}
    for i in range(2):
        fleet.probe_failed(f"a{i}", 100 + i, later)
    assert fleet.burst(small, later) == (2, 4)
    assert fleet.pause_reason(small, later) is None
    fleet.probe_failed("a2", 102, later)
    assert fleet.pause_reason(small, later) is not None


async def test_a_burst_of_failed_probes_pauses_the_ladder_with_a_warning() -> None:
    w = World(heal_restart_after=T1, heal_reboot_after=T2, heal_replace_after=T3)
    service = FakeGatewayService(w)
    w.op.gateway_service = service
    assert isinstance(await w.converge(), Done)
    w.op.memory.phases.update({f"o{i}": "Running" for i in range(4)})
    for i in range(2):  # two other servers failed their probe moments ago, then answered
        w.op.fleet.probe_failed(f"o{i}", 900 + i, w.clock.at)
    w.wedged = True
    await w.one_pass()  # 3 of 5 servers failed within the minute
    w.clock.advance(T1)
    for i in range(2):  # and they keep flapping
        w.op.fleet.probe_failed(f"o{i}", 900 + i, w.clock.at)
    await w.one_pass()
    assert service.restarts == []
    [paused] = [e for e in w.events.posted if e[1] == "RepairsPaused"]
    assert "gateway probes failed on 3 servers" in paused[2]
    held = next(c for c in w.status.conditions if c.type == "RepairsPaused")
    assert (held.status, held.reason) == ("True", "FleetShortCircuit")
    assert "gateway probes failed on 3 servers" in held.message
    w.clock.advance(BURST_WINDOW + 1)  # the others stay healthy: only this one fails now
    await w.one_pass()
    assert service.restarts == list(w.hetzner.servers)
    resumed = next(c for c in w.status.conditions if c.type == "RepairsPaused")
    assert (resumed.status, resumed.reason) == ("False", "RepairsResumed")


async def test_a_replacement_failing_within_the_cooldown_is_not_replaced_in_a_loop() -> None:
    cooldown = 900
    w = World(
        heal_restart_after=T1, heal_reboot_after=T2, heal_replace_after=T3, heal_cooldown=cooldown
    )
    service = FakeGatewayService(w)
    w.op.gateway_service = service
    assert isinstance(await w.converge(), Done)
    w.wedged = True
    await w.one_pass()
    for wait in (T1, T2, T3):
        w.clock.advance(wait)
        await w.one_pass()
    w.wedged = False
    assert isinstance(await w.converge(), Done)  # the replacement answers ...
    assert w.status.healing is not None
    replaced_at = w.status.healing.last_repair_at
    assert replaced_at is not None
    w.wedged = True  # ... and fails again soon
    for _ in range(6):
        await w.one_pass()
        w.clock.advance(T2)
        if w.clock.at >= replaced_at + timedelta(seconds=cooldown):
            break
        assert len(w.hetzner.servers) == 1
        assert [r.rung.value for r in w.status.healing.repairs] == ["restart", "reboot", "replace"]
    # The cooldown has passed: the ladder starts over from the restart.
    await w.one_pass()
    assert w.status.healing.repairs[-1].rung.value == "restart"
