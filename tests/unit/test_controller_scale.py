"""One replica, many Agents: the provisioning queue is first come first served, and kopf runs
one worker per Agent by default (a waiting Agent must not hold a worker another one needs)."""

from __future__ import annotations

import kopf

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
