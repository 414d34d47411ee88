"""The tailnet's state in the sandbox's state file (`--state`): tokens, keys, devices, pending
joins and the join log, as JSON-ready dicts. Loading re-arms what was in flight: a pending join
fires when it was due, an offline ephemeral device is cleaned up when it would have been (both in
world time, converted back to simulated delays)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from aura_sandbox.tailnet_enrolment import Enrolment
from aura_sandbox.tailnet_model import (
    AuthKey,
    Device,
    JoinAttempt,
    PendingJoin,
    Principal,
    parse_time,
)
from aura_sandbox.tailnet_timers import simulated_until


def _dump(obj: Any) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(obj).items()}


def _times(d: dict[str, Any], *names: str) -> dict[str, Any]:
    return d | {n: parse_time(d.get(n)) for n in names}


def dump(enrolment: Enrolment) -> dict[str, Any]:
    """Tokens, keys, devices, pending joins and the join log of the tailnet `enrolment` serves."""
    return {
        "tokens": [_dump(p) for p in enrolment.callers.tokens.values()],
        "keys": [_dump(k) for k in enrolment.keys.keys.values()],
        "devices": [_dump(d) for d in enrolment.store.devices.values()],
        "pending": [_dump(p) for p in enrolment.pending.values()],
        "joins": [_dump(j) for j in enrolment.joins],
    }


def load(enrolment: Enrolment, data: dict[str, Any]) -> None:
    """Replace the state with `data` from `dump()`, re-arming joins and clean-ups."""
    enrolment.timers.cancel_all()
    enrolment.callers.tokens = {
        p["token"]: Principal(**_times(p, "expires")) for p in data.get("tokens", [])
    }
    enrolment.keys.keys = {
        k["id"]: AuthKey(**_times(k, "created", "expires", "revoked")) for k in data.get("keys", [])
    }
    store = enrolment.store
    store.devices = {
        d["node_id"]: Device(**_times(d, "created", "expires", "last_seen"))
        for d in data.get("devices", [])
    }
    enrolment.joins = [JoinAttempt(**_times(j, "at")) for j in data.get("joins", [])]
    enrolment.pending = {}
    now, scale = enrolment.world.now(), enrolment.time_scale
    for raw in data.get("pending", []):
        pending = PendingJoin(**_times(raw, "due"))
        enrolment.schedule_join(pending, simulated_until(pending.due, now, scale))
    gc_after = timedelta(seconds=enrolment.timings.ephemeral_gc * scale)
    for device in store.devices.values():
        if device.is_ephemeral and not device.connected and device.last_seen is not None:
            due = device.last_seen + gc_after
            enrolment.arm_gc(device.node_id, simulated_until(due, now, scale))
