"""A server created from a copy of a joined server's disk: tailscaled's state file decides whether
it comes back as the same tailnet device or enrols a new one (`aura_sandbox.tailnet_nodestate`).

The copy is what a snapshot gives (`disk.apply_image` copies the disk map); the servers are
driven through the world's listener events like the rest of the tailnet tests.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from aura_sandbox.model import SimServer
from aura_sandbox.tailnet_model import NODE_STATE
from tests.polling import wait_for_async
from tests.sandbox.tailscale_support import TailscaleSandbox, cloud_config, tailscale_sandbox

HOST = "aura-agent-7f3a"
FORGET = "  - rm -f /var/lib/tailscale/tailscaled.state\n"


@pytest.fixture
async def ts() -> AsyncIterator[TailscaleSandbox]:
    async with tailscale_sandbox() as sandbox:
        yield sandbox


async def _joined_then_deleted(ts: TailscaleSandbox) -> tuple[dict[str, Any], dict[str, bytes]]:
    """A server joins, its disk is copied (the snapshot), the server is deleted: its device
    stays in the tailnet, offline."""
    key = await ts.create_key(preauthorized=True)
    original = ts.boot("agent-old", cloud_config(key["key"], hostname=HOST))
    device = await ts.device_of(HOST)
    state = json.loads(original.disk[NODE_STATE])
    assert state == {
        "nodeId": device["nodeId"],
        "machineKey": device["machineKey"],
        "nodeKey": device["nodeKey"],
    }
    image = dict(original.disk)
    ts.delete(original)
    (offline,) = await ts.devices(hostname=HOST)
    assert offline["connectedToControl"] is False
    return device, image


async def _joined(ts: TailscaleSandbox, server: SimServer) -> dict[str, Any]:
    return await ts.join_outcome(server.name)


async def test_a_copy_of_a_joined_disk_is_the_same_device_and_spends_no_key(
    ts: TailscaleSandbox,
) -> None:
    before, image = await _joined_then_deleted(ts)
    key = await ts.create_key(preauthorized=True)
    woken = ts.boot("agent-new", cloud_config(key["key"], hostname=HOST), disk=image)

    joined = await _joined(ts, woken)
    assert joined["outcome"] == "joined", joined
    assert "auth key not used" in joined["reason"]
    (after,) = await ts.devices(hostname=HOST)  # exactly one device: no `-1` duplicate
    for same in ("id", "nodeId", "name", "addresses", "nodeKey", "created"):
        assert after[same] == before[same], same
    assert after["connectedToControl"] is True and "lastSeen" not in after
    assert ts.tailnet.devices[after["nodeId"]].server_id == woken.id
    spare = (await ts.api.get(f"/api/v2/tailnet/-/keys/{key['id']}")).json()
    assert spare["invalid"] is False, "the single-use key in cloud-init stays unspent"
    # The node follows its server from now on.
    ts.power_off(woken)
    (off,) = await ts.devices(hostname=HOST)
    assert off["connectedToControl"] is False


async def test_cloud_init_that_removes_the_state_enrols_a_new_device(
    ts: TailscaleSandbox,
) -> None:
    before, image = await _joined_then_deleted(ts)
    key = await ts.create_key(preauthorized=True)
    user_data = cloud_config(key["key"], hostname=HOST).replace("runcmd:\n", "runcmd:\n" + FORGET)
    clone = ts.boot("agent-clone", user_data, disk=image)

    assert (await _joined(ts, clone))["outcome"] == "joined"
    devices = {d["nodeId"]: d for d in await ts.devices(hostname=HOST)}
    assert set(devices) - {before["nodeId"]}, "a second device"
    (new,) = [d for node, d in devices.items() if node != before["nodeId"]]
    # The kept device still holds the name: the new one is suffixed (tailscale#8564).
    assert new["name"].split(".")[0] == f"{HOST}-1"
    assert (await ts.api.get(f"/api/v2/tailnet/-/keys/{key['id']}")).json()["invalid"] is True
    assert json.loads(clone.disk[NODE_STATE])["nodeId"] == new["nodeId"]


async def test_a_deleted_device_refuses_the_stored_state_and_the_key_enrols(
    ts: TailscaleSandbox,
) -> None:
    before, image = await _joined_then_deleted(ts)
    assert (await ts.api.delete(f"/api/v2/device/{before['nodeId']}")).status_code == 200
    key = await ts.create_key(preauthorized=True)
    woken = ts.boot("agent-new", cloud_config(key["key"], hostname=HOST), disk=image)

    joined = await _joined(ts, woken)
    assert joined["outcome"] == "joined", joined
    (new,) = await ts.devices(hostname=HOST)
    assert new["nodeId"] != before["nodeId"]
    assert new["name"] == before["name"], "the name was freed with the device"
    assert (await ts.api.get(f"/api/v2/tailnet/-/keys/{key['id']}")).json()["invalid"] is True
    # Refused without a key to log in with, the host stays out of the tailnet.
    bare = ts.boot("agent-bare", None, disk=image)
    failed = await _joined(ts, bare)
    assert failed["outcome"] == "failed" and "no auth key" in failed["reason"]
    assert [d["nodeId"] for d in await ts.devices(hostname=HOST)] == [new["nodeId"]]


async def test_an_expired_node_re_authenticates_with_the_key_as_the_same_device(
    ts: TailscaleSandbox,
) -> None:
    before, image = await _joined_then_deleted(ts)
    kept = ts.tailnet.devices[before["nodeId"]]
    kept.key_expiry_disabled = False  # as an untagged node's would
    kept.expires = ts.world.now() - timedelta(days=1)
    revoked = await ts.create_key(preauthorized=True)
    await ts.api.delete(f"/api/v2/tailnet/-/keys/{revoked['id']}")
    stuck = ts.boot("agent-stuck", cloud_config(revoked["key"], hostname=HOST), disk=image)
    failed = await _joined(ts, stuck)
    assert failed["outcome"] == "failed" and "key expired" in failed["reason"], failed
    assert (await ts.devices(hostname=HOST))[0]["connectedToControl"] is False

    key = await ts.create_key(preauthorized=True)
    woken = ts.boot("agent-new", cloud_config(key["key"], hostname=HOST), disk=image)
    joined = await _joined(ts, woken)
    assert joined["outcome"] == "joined" and "re-authenticated" in joined["reason"], joined
    (after,) = await ts.devices(hostname=HOST)
    assert after["nodeId"] == before["nodeId"] and after["nodeKey"] != before["nodeKey"]
    assert after["connectedToControl"] is True
    assert (await ts.api.get(f"/api/v2/tailnet/-/keys/{key['id']}")).json()["invalid"] is True


async def test_a_pending_rejoin_survives_a_restart(ts: TailscaleSandbox) -> None:
    key = await ts.create_key(preauthorized=True)
    server = ts.boot("agent-old", cloud_config(key["key"], hostname=HOST))
    node = (await ts.device_of(HOST))["nodeId"]
    ts.delete(server)
    ts.boot("agent-copy", None, disk=dict(server.disk))
    saved = json.loads(json.dumps(ts.tailnet.to_dict()))  # before tailscaled logged in
    (pending,) = saved["pending"]
    assert pending["node_state"]["nodeId"] == node

    async with tailscale_sandbox() as other:
        other.tailnet.load_dict(saved)
        found = await wait_for_async(lambda: _connected(other, node))
        assert found.server_name == "agent-copy"


async def _connected(ts: TailscaleSandbox, node: str) -> Any:
    device = ts.tailnet.devices.get(node)
    return device if device is not None and device.connected else None
