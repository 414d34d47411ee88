"""The checkpoint controller's logic against the stateful fakes: adoption of a lost
create_image, the Agent hold, deadlines, retention and the schedule's slots."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from aura.checkpoint_models import (
    AgentCheckpointSpec,
    AgentCheckpointStatus,
    CheckpointPhase,
    CheckpointPolicy,
)
from aura.controller.checkpoints import checkpoint, hold, retention, schedule
from aura.controller.checkpoints.context import ObjectContext
from aura.controller.checkpoints.labels import SCHEDULED
from aura.controller.clients.gateway_service import GatewayState
from aura.controller.clients.hetzner_api import ServerInfo
from aura.controller.reconcile.context import Wait
from aura.wire import parse_duration
from tests.fakes.checkpoints import FakeCheckpointStore
from tests.unit.test_controller_reconcile import REF, World

LOG = logging.getLogger("test")


class RecordingGateway:
    def __init__(self) -> None:
        self.calls: list[GatewayState] = []

    async def set_state(self, target: Any, state: GatewayState) -> Any:
        from aura.configure.base import ConfigResult

        self.calls.append(state)
        return ConfigResult(ok=True)


def _setup(**spec: Any) -> tuple[World, FakeCheckpointStore, Any]:
    world = World()
    store = FakeCheckpointStore()
    world.op.checkpoints = store
    server = ServerInfo(id=7, name="s", status="running", server_type="cx22", location="nbg1")
    world.hetzner.servers[7] = server
    store.put(
        "agents",
        {
            "metadata": {"namespace": REF.namespace, "name": REF.name, "uid": REF.uid},
            "spec": {"desiredState": "running"},
            "status": {"phase": "Running", "server": {"id": 7}},
        },
    )
    status = AgentCheckpointStatus()
    world.op.gateway_service = RecordingGateway()
    base = ObjectContext(
        op=world.op,
        namespace=REF.namespace,
        name="c1",
        uid="ckpt-uid",
        generation=1,
        created=datetime.now(UTC),
        log=LOG,
        conditions=status.conditions,
    )
    cx = checkpoint.new(base, AgentCheckpointSpec(agent_name=REF.name, **spec), status)
    return world, store, cx


async def _until_settled(cx: Any, world: World, passes: int = 12) -> None:
    for _ in range(passes):
        try:
            result = await checkpoint.reconcile(cx)
        except Exception as exc:  # what kopf would retry
            LOG.info("pass raised %s", exc)
            continue
        if not isinstance(result, Wait):
            return
        world.hetzner.finish_images()


async def test_a_lost_create_image_response_is_adopted_not_repeated() -> None:
    world, store, cx = _setup(mode="online")
    world.hetzner.lose_image_response = True
    await _until_settled(cx, world)
    assert cx.status.phase == CheckpointPhase.SUCCEEDED
    assert world.hetzner.calls["create_image"] == 1
    assert list(world.hetzner.images) == [cx.status.image_id]
    assert cx.status.size_gb == 1.5
    agent = await store.get("agents", REF.namespace, REF.name)
    assert agent is not None
    assert "checkpointInProgress" not in agent["status"], "the Agent is released"
    assert REF.uid not in world.op.holds


async def test_consistent_mode_stops_and_restarts_the_gateway() -> None:
    world, _store, cx = _setup()
    gateway = cx.op.gateway_service
    assert isinstance(gateway, RecordingGateway)
    target_calls = gateway.calls

    async def fake_target() -> Any:
        return None

    cx.gateway_target = fake_target  # type: ignore[method-assign]
    await _until_settled(cx, world)
    assert cx.status.phase == CheckpointPhase.SUCCEEDED
    assert target_calls == [GatewayState.STOPPED, GatewayState.STARTED]
    assert checkpoint.QUIESCED in cx.status.indications
    assert not cx.status.gateway_stopped


async def test_an_agent_held_by_a_checkpoint_waits_and_says_why() -> None:
    world, _store, cx = _setup(mode="online")
    await checkpoint.reconcile(cx)  # Pending -> held
    ctx = world.ctx()
    held = await hold.wait_if_held(ctx)
    assert isinstance(held, Wait)
    ready = next(c for c in ctx.status.conditions if c.type == "Ready")
    assert ready.reason == "Checkpointing"
    assert ready.message == "checkpoint c1 in progress: power and delete actions wait for it"


async def test_past_the_deadline_it_fails_and_deletes_the_partial_image() -> None:
    world, _store, cx = _setup(mode="online", failure_deadline="60s")
    for _ in range(3):
        await checkpoint.reconcile(cx)
    assert cx.status.image_id is not None
    cx.created -= timedelta(seconds=120)
    await checkpoint.reconcile(cx)
    assert cx.status.phase == CheckpointPhase.FAILED
    assert "deadline of 60s exceeded" in (cx.status.error.message if cx.status.error else "")
    assert world.hetzner.images == {}
    assert REF.uid not in world.op.holds


def _ckpt(name: str, hours_ago: float, *, phase: str = "Succeeded", **extra: Any) -> Any:
    taken = (datetime(2026, 1, 10, tzinfo=UTC) - timedelta(hours=hours_ago)).isoformat()
    return {
        "metadata": {"name": name, "labels": {SCHEDULED: "true"}},
        "spec": {"agentName": "a", "deletionPolicy": extra.get("policy", "Delete")},
        "status": {"phase": phase, "readyToUse": phase == "Succeeded", "takenAt": taken,
                   "startedAt": taken},
    }  # fmt: skip


def test_retention_keeps_the_newest_and_protected_ones() -> None:
    now = datetime(2026, 1, 10, tzinfo=UTC)
    items = [_ckpt("c1", 1), _ckpt("c2", 2), _ckpt("c3", 3), _ckpt("c4", 4, policy="Retain"),
             _ckpt("c5", 5), _ckpt("f1", 6, phase="Failed")]  # fmt: skip
    restores = [{"spec": {"checkpointName": "c5"}, "status": {"phase": "InProgress"}}]
    policy = CheckpointPolicy(schedule="@hourly", keep=2)
    assert retention.to_prune(items, restores, policy, now) == ["c3", "f1"]
    by_age = CheckpointPolicy(schedule="@hourly", keep_for="90m")
    assert "c1" not in retention.to_prune(items, [], by_age, now + timedelta(days=9))


def test_schedule_offsets_are_stable_and_inside_the_window() -> None:
    first = schedule.offset("uid-a", 86400, 3600)
    assert first == schedule.offset("uid-a", 86400, 3600)
    assert 0 <= first <= 3600
    assert schedule.offset("uid-a", 120, 3600) <= 60, "at most half the period"
    spread = {round(schedule.offset(f"uid-{i}", 86400, 3600)) for i in range(200)}
    assert len(spread) > 150


async def test_schedule_creates_one_checkpoint_per_slot() -> None:
    store = FakeCheckpointStore()
    agent = {
        "metadata": {"namespace": "ns", "name": "a", "uid": "u",
                     "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"checkpoints": {"schedule": "0 3 * * *", "keep": 2}},
        "status": {"phase": "Running"},
    }  # fmt: skip
    now = datetime(2026, 1, 5, 5, 0, tzinfo=UTC)
    for _ in range(3):
        summary = await schedule.tick(store, agent, 0, LOG, now)
    names = [k[2] for k in store.objects if k[0] == "agentcheckpoints"]
    assert names == ["a-202601050300"]
    assert summary["nextCheckpointTime"] == "2026-01-06T03:00:00Z"
    early = dict(agent, metadata={**agent["metadata"], "creationTimestamp": "2026-01-05T04:00:00Z"})
    other = FakeCheckpointStore()
    await schedule.tick(other, early, 0, LOG, now)
    assert other.objects == {}, "no checkpoint for a slot before the Agent existed"


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("1h30m", 5400), ("7d", 604800)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_a_bad_duration_names_the_format() -> None:
    with pytest.raises(ValueError, match="not a duration like 90s"):
        parse_duration("5 minutes")


async def test_image_sweeper_deletes_only_unclaimed_delete_policy_images_after_the_grace() -> None:
    from aura.controller.checkpoints.labels import CHECKPOINT_UID, DELETION_POLICY
    from aura.controller.checkpoints.sweeper import ImageSweeper
    from aura.controller.clients.hetzner_api import ImageInfo
    from aura.controller.naming import MANAGED_BY, MANAGED_BY_VALUE

    world, store, _ = _setup()
    store.put("agentcheckpoints", {"metadata": {"namespace": "ns", "name": "kept",
                                                "uid": "claimed"}})  # fmt: skip
    for image_id, uid, policy in ((1, "claimed", "Delete"), (2, "gone", "Delete"),
                                  (3, "gone", "Retain")):  # fmt: skip
        labels = {MANAGED_BY: MANAGED_BY_VALUE, CHECKPOINT_UID: uid, DELETION_POLICY: policy}
        world.hetzner.images[image_id] = ImageInfo(id=image_id, status="available", labels=labels)
    now = [0.0]
    sweeper = ImageSweeper(world.op, clock=lambda: now[0])
    assert await sweeper.sweep() == 0, "an orphan is first only noticed"
    now[0] = world.op.config.orphan_grace + 1
    assert await sweeper.sweep() == 1
    assert sorted(world.hetzner.images) == [1, 3]
