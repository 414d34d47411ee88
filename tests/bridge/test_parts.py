"""The processor's small parts on their own: bounded memories, keyed locks, the Agent view."""

from __future__ import annotations

import asyncio

from aura.bridge.agents import ANNOTATION_AS_OF, ANNOTATION_PAST_DUE_SINCE, Agent
from aura.bridge.dedup import RecentEvents
from aura.bridge.early import EarlyStates
from aura.bridge.keyed_locks import KeyedLocks
from aura.bridge.lru import Lru
from aura.bridge.observe import Observed


def test_lru_forgets_the_least_recently_written_first() -> None:
    lru: Lru[str, int] = Lru(2)
    lru.put("a", 1)
    lru.put("b", 2)
    lru.put("a", 3)  # rewriting makes "a" the most recent
    lru.put("c", 4)
    assert ("a" in lru, "b" in lru, "c" in lru) == (True, False, True)
    assert (lru.get("a"), len(lru), lru.pop("a"), lru.pop("a")) == (3, 2, 3, None)


def test_recent_events_are_bounded() -> None:
    recent = RecentEvents(3)
    for i in range(5):
        recent.add(f"evt_{i}")
    assert [f"evt_{i}" in recent for i in range(5)] == [False, False, True, True, True]


def test_early_states_keep_the_newest() -> None:
    early = EarlyStates(10)
    newer = Observed("past_due", 20.0, True, None)
    early.note("sub_1", newer, "invoice payment failed")
    early.note("sub_1", Observed("active", 10.0, True, None), "invoice paid")  # older: ignored
    assert early.newer_than("sub_1", 15.0) == (newer, "invoice payment failed")
    assert early.newer_than("sub_1", 20.0) is None
    early.forget("sub_1")
    assert early.newer_than("sub_1", 0.0) is None


async def test_keyed_locks_serialize_one_key_and_are_dropped_after_use() -> None:
    locks = KeyedLocks()
    order: list[str] = []

    async def hold(key: str, name: str, pause: float) -> None:
        async with locks.hold(key):
            order.append(f"{name} in")
            await asyncio.sleep(pause)
            order.append(f"{name} out")

    await asyncio.gather(hold("s1", "a", 0.05), hold("s1", "b", 0), hold("s2", "c", 0))
    assert order.index("a out") < order.index("b in")  # same key: one at a time
    assert order.index("c in") < order.index("a out")  # other key: not blocked
    assert len(locks) == 0


def test_agent_view_reads_the_served_object() -> None:
    obj = {
        "metadata": {
            "namespace": "ns",
            "name": "a1",
            "resourceVersion": "42",
            "labels": {"aura.dev/stripe-subscription": "sub_1"},
            "annotations": {ANNOTATION_AS_OF: "12.500", ANNOTATION_PAST_DUE_SINCE: "garbage"},
        },
        "spec": {"desiredState": "running"},
    }
    agent = Agent.of(obj)
    assert agent.key == ("ns", "a1")
    assert (agent.resource_version, agent.desired_state) == ("42", "running")
    assert (agent.subscription_id, agent.state_as_of, agent.past_due_since) == ("sub_1", 12.5, None)
    assert agent.last_event_id is None and agent.obj is obj
    bare = Agent.of({"metadata": {"namespace": "ns", "name": "a2"}})
    assert (bare.subscription_id, bare.desired_state, bare.state_as_of) == (None, None, None)
