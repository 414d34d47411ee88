"""The repair ladder against the fakes, timed by the injected clock: restart after T1, reboot
after T2, replace after T3; the cooldown, the per-Agent policy and the fleet limits."""

from __future__ import annotations

import pytest

from aura.configure.base import ConfigResult, ConfigTarget
from aura.controller import errors
from aura.controller.clients.gateway_service import GatewayState
from aura.controller.reconcile.context import Done
from aura.healing_models import HealingPolicy, Rung
from aura.models import AgentSpec
from tests.unit.test_controller_reconcile import REF, World

T1, T2, T3 = 60, 180, 300


class FakeGatewayService:
    def __init__(self, world: World) -> None:
        self.world = world
        self.restarts: list[int] = []
        self.fail: errors.AuraError | None = None
        self.heals = False

    async def set_state(self, target: ConfigTarget, state: GatewayState) -> ConfigResult:
        if self.fail is not None:
            raise self.fail
        assert state == GatewayState.RESTARTED
        assert target.ssh_private_key and target.host  # the configurator's connection
        self.restarts.append(target.server_id)
        if self.heals:
            self.world.wedged = False
        return ConfigResult(ok=True)


async def _running(**config: float) -> tuple[World, FakeGatewayService]:
    w = World(heal_restart_after=T1, heal_reboot_after=T2, heal_replace_after=T3, **config)
    service = FakeGatewayService(w)
    w.op.gateway_service = service
    assert isinstance(await w.converge(), Done)
    return w, service


def _repairs(w: World) -> list[str]:
    return [e[1] for e in w.events.posted if e[1].startswith("Repair")]


async def test_the_ladder_climbs_restart_reboot_replace_on_time() -> None:
    w, service = await _running()
    server_id = next(iter(w.hetzner.servers))
    w.wedged = True
    await w.one_pass()  # the episode begins: Degraded, nothing done yet
    assert w.status.healing is not None and w.status.healing.unhealthy_since == w.clock.at
    w.clock.advance(T1 - 1)
    await w.one_pass()
    assert service.restarts == []
    w.clock.advance(1)
    await w.one_pass()
    assert service.restarts == [server_id]
    assert w.status.healing.rung == Rung.RESTART
    w.clock.advance(T2 - 1)
    await w.one_pass()
    assert w.hetzner.reboots == []
    w.clock.advance(1)
    await w.one_pass()
    assert w.hetzner.reboots == [server_id]
    w.clock.advance(T3)
    await w.one_pass()
    assert server_id not in w.hetzner.servers  # replaced: a new attempt creates a new one
    assert _repairs(w) == ["RepairRestart", "RepairReboot", "RepairReplace"]
    replace_event = next(e for e in w.events.posted if e[1] == "RepairReplace")
    assert "blank (no ready checkpoint)" in replace_event[2]
    assert [r.rung for r in w.status.healing.repairs] == list(Rung)

    w.wedged = False
    assert isinstance(await w.converge(), Done)
    assert len(w.hetzner.servers) == 1 and server_id not in w.hetzner.servers
    assert w.status.healing.unhealthy_since is None and w.status.healing.rung is None
    assert any(e[1] == "Repaired" and "after replace" in e[2] for e in w.events.posted)


async def test_a_restart_that_cannot_act_escalates_at_once() -> None:
    w, service = await _running()
    service.fail = errors.Retryable("gateway restart refused: server is unreachable")
    w.wedged = True
    await w.one_pass()
    w.clock.advance(T1)
    await w.one_pass()
    assert w.status.healing is not None
    assert w.status.healing.repairs[-1].result.startswith("failed: ")
    await w.one_pass()  # no T2 wait after a rung that could not act
    assert len(w.hetzner.reboots) == 1


async def test_the_cooldown_escalates_instead_of_repeating_a_rung() -> None:
    w, service = await _running(heal_cooldown=900)
    service.heals = True
    w.wedged = True
    await w.one_pass()
    w.clock.advance(T1)
    await w.one_pass()  # restart, which heals
    await w.one_pass()
    assert service.restarts and w.status.healing is not None
    assert w.status.healing.unhealthy_since is None
    # Unhealthy again within the cooldown: no second restart, the reboot comes instead.
    w.clock.advance(100)
    w.wedged = True
    await w.one_pass()
    w.clock.advance(T1)
    await w.one_pass()
    assert len(service.restarts) == 1 and len(w.hetzner.reboots) == 1
    # After the cooldown a new episode starts from the first rung again.
    w.wedged = False
    await w.one_pass()
    w.clock.advance(1000)
    w.wedged = True
    await w.one_pass()
    w.clock.advance(T1)
    await w.one_pass()
    assert len(service.restarts) == 2


@pytest.mark.parametrize(
    ("policy", "want"),
    [
        (HealingPolicy(enabled=False), []),
        (HealingPolicy(max_rung=Rung.RESTART), ["RepairRestart"]),
        (HealingPolicy(max_rung=Rung.REBOOT), ["RepairRestart", "RepairReboot"]),
    ],
)
async def test_the_policy_stops_the_ladder(policy: HealingPolicy, want: list[str]) -> None:
    w, _ = await _running()
    w.spec = AgentSpec(healing=policy)
    w.wedged = True
    for _ in range(6):
        await w.one_pass()
        w.clock.advance(T3)
    assert _repairs(w) == want
    assert len(w.hetzner.servers) == 1


async def test_fleet_short_circuit_and_concurrency_limit() -> None:
    w, service = await _running(heal_max_unhealthy_share=0.4, heal_max_concurrent=1)
    w.wedged = True
    # Three of five serving Agents unhealthy: over 40%, no repair, a Warning instead.
    w.op.memory.phases.update(
        {REF.uid: "Degraded", "b": "Degraded", "c": "Degraded", "d": "Running", "e": "Running"}
    )
    await w.one_pass()
    w.clock.advance(T1)
    await w.one_pass()
    assert service.restarts == []
    assert any(e[1] == "RepairsPaused" and "3 of 5" in e[2] for e in w.events.posted)
    # The share drops: repairs resume, but only one may be in flight at once.
    w.op.memory.phases.update({"b": "Running", "c": "Running"})
    w.op.fleet.in_flight.add("another-agent")
    await w.one_pass()
    assert service.restarts == []
    w.op.fleet.release("another-agent")
    await w.one_pass()
    assert len(service.restarts) == 1


async def test_a_pause_warns_each_agent_once() -> None:
    w, service = await _running(heal_max_unhealthy_share=0.4)
    w.wedged = True
    w.op.memory.phases.update({REF.uid: "Degraded", "b": "Degraded", "c": "Running"})
    await w.one_pass()
    for _ in range(3):
        w.clock.advance(T1)
        await w.one_pass()
    assert [e[1] for e in w.events.posted].count("RepairsPaused") == 1
    assert service.restarts == []


async def test_the_production_restart_runs_the_service_playbook_through_the_configurator() -> None:
    from aura.configure.base import ConfigResult
    from aura.controller.clients.gateway_service import (
        STATE_VAR,
        PlaybookGatewayService,
        set_gateway,
    )
    from tests.fakes.kube import FakeConfigurator

    configurator = FakeConfigurator()
    service = PlaybookGatewayService(configurator)
    target = ConfigTarget(agent="ns/a", server_id=7, host="100.64.0.7", ssh_private_key="k")
    assert "restarted" in await set_gateway(service, target, GatewayState.RESTARTED, 5.0)
    [sent] = configurator.targets
    assert sent.host == target.host and sent.extra_vars[STATE_VAR] == "restarted"
    configurator.results = [ConfigResult(ok=False, message="unit openclaw-gateway not found")]
    with pytest.raises(errors.Retryable, match="not found"):
        await set_gateway(service, target, GatewayState.RESTARTED, 5.0)


def test_the_service_playbook_drives_the_unit_the_runtime_role_installs() -> None:
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[2] / "ansible"
    [play] = yaml.safe_load((root / "gateway-service.yml").read_text())
    defaults = yaml.safe_load((root / "roles/runtime/defaults/main.yml").read_text())
    unit = play["tasks"][0]["ansible.builtin.systemd_service"]
    assert unit["name"] == defaults["runtime_service_name"]
    assert unit["state"] == "{{ aura_gateway_state }}"
