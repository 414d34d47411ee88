"""A tailnet node's identity on a simulated disk, and what the control plane makes of it when a
new server boots with it.

Real tailscaled keeps its machine key and its node's private key in `NODE_STATE` and logs in
with them as it starts. `tailscale up --auth-key=...` on a host that already holds a node key
does not register a new node: the register request carries the stored node key
(tailscale/tailscale `control/controlclient/direct.go`, `doLogin`: "Try refreshing the current
key first"), and an auth key is needed only for a node's first registration (a maintainer in
tailscale/tailscale#13451). A snapshot copies the file like any other, so a server created from
the snapshot of a joined server starts as that node, unless its cloud-init removes the file
first (`tailnet_cloudinit.forgets_node_state`).

The sandbox's file holds the public halves the control plane matches on (`nodeId`, `machineKey`,
`nodeKey`), never a private key: it is readable through the admin disk API.

What the control plane does with a stored identity is not public; the sandbox decides (`judge`):

- `KNOWN`: the device with that `nodeId` exists, holds that node key, and the key has not
  expired. The new server is that device (same `nodeId`, `id`, name and addresses), connected;
  the auth key in its cloud-init is not used (a single-use one stays unspent). Should another
  server still run as that node (a clone whose cloud-init kept the file), the newest boot holds
  the device; real hosts sharing a node key would take turns.
- `EXPIRED`: the device exists but its node key expired. tailscaled makes a new node key and
  registers it with the old one and the auth key (`doLogin`: "Old key expired -> regen=true"),
  which re-authenticates the same device and spends the key; without a valid key the host
  stays logged out. An assumption: tagged devices (Aura's) never expire, so it rarely applies.
- `UNKNOWN`: the device was deleted (or re-keyed since the snapshot). The stored key is refused,
  tailscaled needs a login, and the `tailscale up --auth-key` of cloud-init registers a new
  device, as on a blank disk. Plausible rather than documented: it is what the existing host
  of a deleted device sees (it is logged out), followed by an ordinary login with the key.
"""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum

from aura_sandbox.tailnet_model import NODE_STATE, ZERO_TIME, Device

_FIELDS = ("nodeId", "machineKey", "nodeKey")


class Verdict(StrEnum):
    KNOWN = "known"
    EXPIRED = "expired"
    UNKNOWN = "unknown"


def record(files: dict[str, bytes], device: Device) -> None:
    """Write `device`'s identity where tailscaled keeps it, as a node that registered would."""
    state = {"nodeId": device.node_id, "machineKey": device.machine_key}
    state["nodeKey"] = device.node_key
    files[NODE_STATE] = json.dumps(state).encode()


def read(files: dict[str, bytes]) -> dict[str, str] | None:
    """The identity in `NODE_STATE`, or None when there is none (or it is not one)."""
    raw = files.get(NODE_STATE)
    if raw is None:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict) or not all(isinstance(data.get(f), str) for f in _FIELDS):
        return None
    return {f: data[f] for f in _FIELDS}


def expired(device: Device, now: datetime) -> bool:
    return not device.key_expiry_disabled and device.expires != ZERO_TIME and device.expires <= now


def judge(device: Device | None, state: dict[str, str], now: datetime) -> tuple[Verdict, str]:
    """What the control plane makes of `state` (`device` is the one with its `nodeId`, if any),
    with the reason for the join log."""
    if device is None:
        return Verdict.UNKNOWN, f"node {state['nodeId']} from the disk's state no longer exists"
    if device.node_key != state["nodeKey"] or device.machine_key != state["machineKey"]:
        return Verdict.UNKNOWN, f"node {device.node_id} was re-keyed since the disk's state"
    if expired(device, now):
        return Verdict.EXPIRED, f"node {device.node_id}'s key expired"
    return Verdict.KNOWN, f"node {device.node_id} from the disk's state"
