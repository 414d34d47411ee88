"""`spec.checkpoints.schedule`: an AgentCheckpoint per cron slot, spread across the fleet.

Every Agent's checkpoint for a slot starts at a stable offset after it: a hash of the Agent's
UID spread over `--checkpoint-jitter` (at most half the schedule's period), so a fleet on the
same `@daily` does not call `create_image` in the same second, and a restarted operator picks
the same instant. The checkpoint's name is derived from the slot (`<agent>-<YYYYMMDDHHMM>`), so
creating it is idempotent: a second operator pass, or one after a crash, gets "already exists".
Slots before the Agent existed are skipped; a missed slot (operator down) is taken late, once.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from croniter import croniter

from aura.checkpoint_models import CHECKPOINT_KIND, CHECKPOINT_PLURAL, CheckpointPolicy
from aura.controller import shards
from aura.controller.checkpoints import retention
from aura.controller.checkpoints.labels import SCHEDULED
from aura.controller.checkpoints.store import CheckpointStore, Obj
from aura.controller.reconcile.context import Logger
from aura.wire import API_VERSION

_SKIP_PHASES = {"Deleting", "Deleted", "Failed", "Queued", "Provisioning"}


def offset(uid: str, period: float, jitter: float) -> float:
    """The Agent's stable start offset in seconds within its slot."""
    window = max(0.0, min(jitter, period / 2))
    fraction = int(hashlib.sha256(uid.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return window * fraction


def slots(schedule: str, now: datetime) -> tuple[datetime, datetime, float]:
    """The latest slot at or before `now`, the next one, and the period between them."""
    it = croniter(schedule, now)
    previous: datetime = it.get_prev(datetime)
    it = croniter(schedule, previous)
    following: datetime = it.get_next(datetime)
    return previous, following, (following - previous).total_seconds()


def checkpoint_name(agent: str, slot: datetime) -> str:
    return f"{agent[:230]}-{slot:%Y%m%d%H%M}"


async def tick(
    store: CheckpointStore,
    agent: Obj,
    jitter: float,
    log: Logger,
    now: datetime | None = None,
) -> dict[str, Any]:
    """One look at an Agent's schedule: create what is due, prune; returns status.checkpoints."""
    now = now or datetime.now(UTC)
    meta, spec = agent["metadata"], agent.get("spec") or {}
    policy = CheckpointPolicy.model_validate(spec["checkpoints"])
    namespace, name, uid = meta["namespace"], meta["name"], meta["uid"]
    created = datetime.fromisoformat(meta["creationTimestamp"].replace("Z", "+00:00"))
    slot, following, period = slots(policy.schedule, now)
    shift = timedelta(seconds=offset(uid, period, jitter))
    phase = (agent.get("status") or {}).get("phase")
    due = slot >= created and now >= slot + shift
    if due and spec.get("desiredState") != "deleted" and phase not in _SKIP_PHASES:
        checkpoint = checkpoint_name(name, slot)
        body: dict[str, Any] = {
            "apiVersion": API_VERSION,
            "kind": CHECKPOINT_KIND,
            "metadata": {
                "name": checkpoint,
                "namespace": namespace,
                # The checkpoint belongs to its Agent's shard (controller/shards.py).
                "labels": {SCHEDULED: "true", **shards.label_of(agent)},
            },
            "spec": {
                "agentName": name,
                "mode": policy.mode.value,
                "deletionPolicy": policy.deletion_policy.value,
            },
        }
        if await store.create(CHECKPOINT_PLURAL, namespace, body):
            log.info("scheduled checkpoint %s created", checkpoint)
    pruned, newest = await retention.prune(store, namespace, name, policy, now)
    for gone in pruned:
        log.info("pruned checkpoint %s (keep=%s keepFor=%s)", gone, policy.keep, policy.keep_for)
    pending = now < slot + shift and slot >= created
    nxt = slot + shift if pending else following + shift
    summary: dict[str, Any] = {"nextCheckpointTime": _iso(nxt)}
    if newest is not None:
        summary["lastCheckpoint"] = newest["metadata"]["name"]
        summary["lastCheckpointTime"] = (newest.get("status") or {}).get("takenAt")
    return summary


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
