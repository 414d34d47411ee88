"""Servers joining the tailnet from their cloud-init, and what happens to their devices after.

Servers are driven through the world's listener events (what the Hetzner half emits); the
same flow through the `/v1` API is in `test_tailscale_e2e.py`.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import AsyncIterator

import pytest

from aura_sandbox.tailnet_model import TailnetTimings
from tests.polling import wait_for_async
from tests.sandbox.tailscale_support import (
    TailscaleSandbox,
    cloud_config,
    tailscale_sandbox,
)

FAST = 0.0002
JOIN = TailnetTimings().join
GC = TailnetTimings().ephemeral_gc


@pytest.fixture
async def ts() -> AsyncIterator[TailscaleSandbox]:
    async with tailscale_sandbox() as sandbox:
        yield sandbox


@pytest.fixture
async def fast() -> AsyncIterator[TailscaleSandbox]:
    """For the ephemeral clean-up: 30 simulated minutes take 0.36 s."""
    async with tailscale_sandbox(time_scale=FAST) as sandbox:
        yield sandbox


async def test_server_joins_after_a_delay_with_the_keys_properties(ts: TailscaleSandbox) -> None:
    key = await ts.create_key(preauthorized=True, ephemeral=False)
    ts.boot("agent-0001", cloud_config(key["key"], hostname="aura-agent-0001"))
    # tailscale up takes a while: nothing yet, the join is pending.
    assert ts.tailnet.devices == {}
    assert [p.server_name for p in ts.tailnet.pending.values()] == ["agent-0001"]

    device = await ts.device_of("aura-agent-0001")
    assert device["name"] == f"aura-agent-0001.{ts.tailnet.dns_suffix}"
    assert device["tags"] == ["tag:aura-agent"]
    assert device["authorized"] is True
    assert device["isEphemeral"] is False
    assert device["connectedToControl"] is True
    assert "lastSeen" not in device  # client-go-v2: nil while connected
    assert device["os"] == "linux"
    assert device["user"] == "tagged-devices"
    assert device["nodeId"].endswith("CNTRL")
    assert device["id"].isdigit()
    v4, v6 = (ipaddress.ip_address(a) for a in device["addresses"])
    assert v4 in ipaddress.ip_network("100.64.0.0/10")
    assert v6 in ipaddress.ip_network("fd7a:115c:a1e0::/48")
    assert int(v6) & 0xFFFFFFFF == int(v4)
    assert device["keyExpiryDisabled"] is True
    assert "clientConnectivity" not in device

    # Either id works wherever {deviceId} appears.
    by_node = (await ts.api.get(f"/api/v2/device/{device['nodeId']}")).json()
    by_legacy = (await ts.api.get(f"/api/v2/device/{device['id']}")).json()
    assert by_node == by_legacy == device
    full = (await ts.api.get(f"/api/v2/device/{device['nodeId']}", params={"fields": "all"})).json()
    assert "clientConnectivity" in full
    assert "enabledRoutes" in full

    # The single-use key is spent.
    spent = (await ts.api.get(f"/api/v2/tailnet/-/keys/{key['id']}")).json()
    assert spent["invalid"] is True
    joins = (await ts.http.get("/admin/tailnet/joins")).json()["joins"]
    assert [(j["server_name"], j["outcome"]) for j in joins] == [("agent-0001", "joined")]


async def test_a_disk_with_tailscale_installed_joins_sooner(ts: TailscaleSandbox) -> None:
    """`tailscale up` on a host that has the package (a golden image) skips the install."""
    from aura_sandbox.tailnet_model import TAILSCALE_BINARY

    timings = TailnetTimings()
    cold = await ts.create_key(preauthorized=True)
    golden = await ts.create_key(preauthorized=True)
    before = ts.world.now()
    ts.boot("cold-0001", cloud_config(cold["key"], hostname="cold"))
    ts.boot(
        "golden-0001",
        cloud_config(golden["key"], hostname="golden"),
        disk={TAILSCALE_BINARY: b"tailscale"},
    )
    due = {p.server_name: (p.due - before).total_seconds() for p in ts.tailnet.pending.values()}
    scale = ts.config.time_scale
    assert due["cold-0001"] == pytest.approx(timings.join * scale, abs=0.05)
    assert due["golden-0001"] == pytest.approx(timings.join_preinstalled * scale, abs=0.05)
    assert (await ts.device_of("golden"))["hostname"] == "golden"


async def test_hostname_defaults_to_the_server_name(ts: TailscaleSandbox) -> None:
    key = await ts.create_key()
    ts.boot("agent-0002", cloud_config(key["key"], flag="--authkey "))
    device = await ts.device_of("agent-0002")
    assert device["name"].startswith("agent-0002.")


async def test_name_collision_gets_a_numeric_suffix(ts: TailscaleSandbox) -> None:
    key = await ts.create_key(reusable=True)
    first = ts.boot("agent-a", cloud_config(key["key"], hostname="worker"))
    await ts.device_of("worker")
    ts.power_off(first)  # an offline device still holds its name
    ts.boot("agent-b", cloud_config(key["key"], hostname="worker"))
    ts.boot("agent-c", cloud_config(key["key"], hostname="worker"))
    devices = await wait_for_async(lambda: _at_least(ts, 3, hostname="worker"))
    names = sorted(d["name"].split(".")[0] for d in devices)
    assert names == ["worker", "worker-1", "worker-2"]
    # The OS hostname stays; only the MagicDNS name is suffixed (tailscale#6943).
    assert {d["hostname"] for d in devices} == {"worker"}


async def _at_least(ts: TailscaleSandbox, n: int, **query: str) -> list[dict[str, object]]:
    found = await ts.devices(**query)
    return found if len(found) >= n else []


async def test_single_use_key_lets_only_one_server_join(ts: TailscaleSandbox) -> None:
    key = await ts.create_key()
    ts.boot("first", cloud_config(key["key"], hostname="first"))
    await ts.device_of("first")
    ts.boot("second", cloud_config(key["key"], hostname="second"))
    assert (await ts.join_outcome("second"))["outcome"] == "failed"
    assert await ts.devices(hostname="second") == []
    joins = {
        j["server_name"]: j for j in (await ts.http.get("/admin/tailnet/joins")).json()["joins"]
    }
    assert joins["second"]["outcome"] == "failed"
    assert "single-use key already used" in joins["second"]["reason"]


async def test_expired_key_never_joins(ts: TailscaleSandbox) -> None:
    r = await ts.api.post(
        "/api/v2/tailnet/-/keys",
        json={
            "capabilities": {"devices": {"create": {"tags": ["tag:aura-agent"]}}},
            "expirySeconds": 1,
        },
    )
    key = r.json()
    await wait_for_async(lambda: _invalid(ts, key["id"]), within=3)
    ts.boot("late", cloud_config(key["key"], hostname="late"))
    assert (await ts.join_outcome("late"))["outcome"] == "failed"
    assert await ts.devices() == []


async def _invalid(ts: TailscaleSandbox, key_id: str) -> bool:
    r = await ts.api.get(f"/api/v2/tailnet/-/keys/{key_id}")
    invalid: bool = r.json()["invalid"]
    return invalid


async def test_revoked_and_unknown_keys_never_join(ts: TailscaleSandbox) -> None:
    key = await ts.create_key()
    await ts.api.delete(f"/api/v2/tailnet/-/keys/{key['id']}")
    ts.boot("revoked", cloud_config(key["key"], hostname="revoked"))
    ts.boot("forged", cloud_config(key["key"][:-4] + "AAAA", hostname="forged"))
    ts.boot("plain", "#cloud-config\nruncmd:\n  - echo hello\n")
    for name in ("revoked", "forged"):
        assert (await ts.join_outcome(name))["outcome"] == "failed"
    assert await ts.devices() == []


async def test_key_checked_when_tailscale_up_runs_not_at_boot() -> None:
    # A slower clock (45 s join = 0.9 s) so the revocation surely lands before the join.
    async with tailscale_sandbox(time_scale=0.02) as slow:
        key = await slow.create_key()
        slow.boot("racer", cloud_config(key["key"], hostname="racer"))
        await slow.api.delete(f"/api/v2/tailnet/-/keys/{key['id']}")
        assert slow.tailnet.pending  # still joining when the key was revoked
        decision = await slow.join_outcome("racer")
        assert (decision["outcome"], "key revoked" in decision["reason"]) == ("failed", True)
        assert await slow.devices() == []


async def test_power_off_goes_offline_and_power_on_reconnects(ts: TailscaleSandbox) -> None:
    key = await ts.create_key()
    server = ts.boot("cycler", cloud_config(key["key"], hostname="cycler"))
    online = await ts.device_of("cycler")
    ts.power_off(server)
    offline = await ts.device_of("cycler")
    assert offline["connectedToControl"] is False
    assert offline["lastSeen"]
    await ts.settle(GC / 10)
    assert (await ts.device_of("cycler"))["lastSeen"] == offline["lastSeen"]  # frozen

    ts.power_on(server)
    back = await wait_for_async(lambda: _connected(ts, "cycler"))
    assert back["nodeId"] == online["nodeId"]  # the same device, no re-enrollment
    assert back["addresses"] == online["addresses"]
    assert len(await ts.devices()) == 1


async def _connected(ts: TailscaleSandbox, hostname: str) -> dict[str, object] | None:
    (device,) = await ts.devices(hostname=hostname)
    return device if device["connectedToControl"] else None


async def test_power_off_before_joining_cancels_the_join(ts: TailscaleSandbox) -> None:
    key = await ts.create_key()
    server = ts.boot("quick", cloud_config(key["key"], hostname="quick"))
    ts.power_off(server)
    await ts.settle(JOIN * 3)
    assert await ts.devices() == []
    ts.power_on(server)  # cloud-init runs once per instance: no second attempt
    await ts.settle(JOIN * 3)
    assert await ts.devices() == []
    assert (await ts.api.get(f"/api/v2/tailnet/-/keys/{key['id']}")).json()["invalid"] is False


async def test_ephemeral_device_is_removed_a_while_after_going_offline(
    fast: TailscaleSandbox,
) -> None:
    key = await fast.create_key(ephemeral=True, preauthorized=True)
    server = fast.boot("eph", cloud_config(key["key"], hostname="eph"))
    device = await fast.device_of("eph")
    assert device["isEphemeral"] is True
    fast.power_off(server)
    await fast.settle(GC / 10)
    assert len(await fast.devices(hostname="eph")) == 1  # not instantly (tailscale#8564)
    await wait_for_async(
        lambda: _gone(fast, device["nodeId"]), within=GC * fast.config.time_scale * 3
    )


async def _gone(ts: TailscaleSandbox, node_id: str) -> bool:
    r = await ts.api.get(f"/api/v2/device/{node_id}")
    return r.status_code == 404


async def test_ephemeral_device_survives_a_short_outage(fast: TailscaleSandbox) -> None:
    key = await fast.create_key(ephemeral=True)
    server = fast.boot("blip", cloud_config(key["key"], hostname="blip"))
    device = await fast.device_of("blip")
    fast.power_off(server)
    await fast.settle(GC / 10)
    fast.power_on(server)
    await fast.settle(GC * 1.5)
    assert (await fast.api.get(f"/api/v2/device/{device['nodeId']}")).status_code == 200


async def test_deleting_servers_ephemeral_goes_later_persistent_stays(
    fast: TailscaleSandbox,
) -> None:
    eph_key = await fast.create_key(ephemeral=True)
    keep_key = await fast.create_key()
    eph = fast.boot("eph-del", cloud_config(eph_key["key"], hostname="eph-del"))
    keep = fast.boot("keep-del", cloud_config(keep_key["key"], hostname="keep-del"))
    eph_dev = await fast.device_of("eph-del")
    await fast.device_of("keep-del")
    fast.delete(eph)
    fast.delete(keep)
    await wait_for_async(
        lambda: _gone(fast, eph_dev["nodeId"]), within=GC * fast.config.time_scale * 3
    )
    kept = await fast.device_of("keep-del")
    assert kept["connectedToControl"] is False
    assert kept["lastSeen"]


async def test_delete_device_then_404(ts: TailscaleSandbox) -> None:
    key = await ts.create_key()
    ts.boot("doomed", cloud_config(key["key"], hostname="doomed"))
    device = await ts.device_of("doomed")
    r = await ts.api.delete(f"/api/v2/device/{device['nodeId']}")
    assert r.status_code == 200
    assert r.content == b""
    for method in ("GET", "DELETE"):
        r = await ts.api.request(method, f"/api/v2/device/{device['nodeId']}")
        assert r.status_code == 404
        assert r.json() == {"message": "no manageable device matching this ID found"}
    assert await ts.devices() == []


async def test_device_never_joins_fault(ts: TailscaleSandbox) -> None:
    key = await ts.create_key(reusable=True)
    ts.world.faults.add("device_never_joins", server_name="unlucky")
    ts.boot("unlucky", cloud_config(key["key"], hostname="unlucky"))
    ts.boot("lucky", cloud_config(key["key"], hostname="lucky"))
    await ts.device_of("lucky")
    await ts.settle(JOIN * 3)
    assert await ts.devices(hostname="unlucky") == []
    assert not ts.world.faults  # used up
    joins = {
        j["server_name"]: j for j in (await ts.http.get("/admin/tailnet/joins")).json()["joins"]
    }
    assert joins["unlucky"]["reason"] == "fault device_never_joins"


async def test_authorize_device_joined_with_a_key_that_is_not_preauthorized(
    ts: TailscaleSandbox,
) -> None:
    key = await ts.create_key(preauthorized=False)
    ts.boot("approve-me", cloud_config(key["key"], hostname="approve-me"))
    device = await ts.device_of("approve-me")
    assert device["authorized"] is False
    r = await ts.api.post(f"/api/v2/device/{device['id']}/authorized", json={"authorized": True})
    assert r.status_code == 200
    assert r.json() == {}
    assert (await ts.device_of("approve-me"))["authorized"] is True
    bad = await ts.api.post(f"/api/v2/device/{device['id']}/authorized", json={})
    assert bad.status_code == 400
    missing = await ts.api.post("/api/v2/device/nNope/authorized", json={"authorized": True})
    assert missing.status_code == 404


async def test_set_device_tags(ts: TailscaleSandbox) -> None:
    key = await ts.create_key()
    ts.boot("retag", cloud_config(key["key"], hostname="retag"))
    device = await ts.device_of("retag")
    url = f"/api/v2/device/{device['nodeId']}/tags"
    r = await ts.api.post(url, json={"tags": ["tag:aura", "tag:aura-agent"]})
    assert r.status_code == 200
    assert r.json() == {}
    assert (await ts.device_of("retag"))["tags"] == ["tag:aura", "tag:aura-agent"]
    r = await ts.api.post(url, json={"tags": ["tag:madeup", "tag:wrongexample"]})
    assert r.status_code == 400
    assert r.json() == {
        "message": "requested tags [tag:madeup tag:wrongexample] are invalid or not permitted"
    }


async def test_device_list_filters(ts: TailscaleSandbox) -> None:
    eph = await ts.create_key(ephemeral=True)
    both = await ts.create_key(tags=["tag:aura", "tag:aura-agent"])
    ts.boot("f1", cloud_config(eph["key"], hostname="f1"))
    ts.boot("f2", cloud_config(both["key"], hostname="f2"))
    await wait_for_async(lambda: _at_least(ts, 2))

    async def hosts(**query: str) -> list[str]:
        return sorted(d["hostname"] for d in await ts.devices(**query))

    assert await hosts(isEphemeral="true") == ["f1"]
    assert await hosts(isEphemeral="false") == ["f2"]
    assert await hosts(tags="tag:aura-agent") == ["f1", "f2"]
    r = await ts.api.get(
        "/api/v2/tailnet/-/devices", params=[("tags", "tag:aura-agent"), ("tags", "tag:aura")]
    )
    assert [d["hostname"] for d in r.json()["devices"]] == ["f2"]
    assert await hosts(hostname="f1", os="linux") == ["f1"]
    assert await hosts(name=f"f2.{ts.tailnet.dns_suffix}") == ["f2"]
    full = await ts.devices(fields="all")
    assert all("clientConnectivity" in d for d in full)
    bad = await ts.api.get("/api/v2/tailnet/-/devices", params={"fields": "some"})
    assert bad.status_code == 400
    nested = await ts.api.get("/api/v2/tailnet/-/devices", params={"clientConnectivity": "x"})
    assert nested.status_code == 400


async def test_reboot_does_not_enroll_twice_and_later_boots_do_not_enroll(
    ts: TailscaleSandbox,
) -> None:
    key = await ts.create_key(reusable=True)
    server = ts.boot("rebooter", cloud_config(key["key"], hostname="rebooter"))
    await ts.device_of("rebooter")
    ts.power_off(server)
    ts.power_on(server)
    await ts.settle(JOIN * 3)
    assert len(await ts.devices()) == 1
    # A device deleted by hand does not come back on the next boot (tailscaled is logged out).
    (device,) = await ts.devices()
    await ts.api.delete(f"/api/v2/device/{device['nodeId']}")
    ts.power_off(server)
    ts.power_on(server)
    await ts.settle(JOIN * 3)
    assert await ts.devices() == []


async def test_state_survives_a_restart(fast: TailscaleSandbox) -> None:
    key = await fast.create_key(ephemeral=True, reusable=True)
    server = fast.boot("persist", cloud_config(key["key"], hostname="persist"))
    await fast.device_of("persist")
    fast.boot("pending", cloud_config(key["key"], hostname="pending"))
    fast.power_off(server)
    saved = json.loads(json.dumps(fast.tailnet.to_dict()))

    async with tailscale_sandbox(time_scale=FAST) as other:
        other.tailnet.load_dict(saved)
        assert other.tailnet.keys.keys() == fast.tailnet.keys.keys()
        # The pending join still happens, the offline ephemeral device is still cleaned up.
        await wait_for_async(lambda: _hostnames(other, {"pending"}), within=GC * FAST * 3)


async def _hostnames(ts: TailscaleSandbox, want: set[str]) -> bool:
    r = await ts.http.get("/admin/tailnet/devices")
    return {d["hostname"] for d in r.json()["devices"]} == want


async def test_advertise_tags_must_be_covered_by_the_key(ts: TailscaleSandbox) -> None:
    key = await ts.create_key(tags=["tag:aura", "tag:aura-agent"], reusable=True)
    ts.boot("narrow", f"tailscale up --auth-key={key['key']} --advertise-tags=aura-agent\n")
    ts.boot("wider", f"tailscale up --auth-key={key['key']} --advertise-tags=tag:prod\n")
    device = await ts.device_of("narrow")
    assert device["tags"] == ["tag:aura-agent"]
    assert (await ts.join_outcome("wider"))["outcome"] == "failed"
    assert await ts.devices(hostname="wider") == []


async def test_oauth_secret_as_auth_key_mints_an_ephemeral_key_on_the_node(
    ts: TailscaleSandbox,
) -> None:
    secret = ts.config.tailscale_client_secret
    ts.boot(
        "self-minted",
        f"tailscale up --auth-key='{secret}?preauthorized=true' "
        "--advertise-tags=tag:aura-agent --hostname=self-minted\n",
    )
    ts.boot("no-tags", f"tailscale up --auth-key={secret} --hostname=no-tags\n")
    device = await ts.device_of("self-minted")
    assert (device["isEphemeral"], device["authorized"]) == (True, True)
    assert device["tags"] == ["tag:aura-agent"]
    assert (await ts.join_outcome("no-tags"))["outcome"] == "failed"
    assert await ts.devices(hostname="no-tags") == []
    joins = (await ts.http.get("/admin/tailnet/joins")).json()["joins"]
    assert {j["server_name"]: j["reason"] for j in joins}["no-tags"] == (
        "oauth authkeys require --advertise-tags"
    )


async def test_set_device_name_renames_the_magicdns_name_only(ts: TailscaleSandbox) -> None:
    """A warm-pool server handed to a customer takes the customer's name; the OS hostname is
    the machine's and stays. Names are unique; an empty name resets to the hostname."""
    key = await ts.create_key(preauthorized=True, tags=["tag:aura-pool"])
    ts.boot("pool-0001", cloud_config(key["key"], hostname="pool-0001"))
    other_key = await ts.create_key(preauthorized=True)
    ts.boot("taken-0001", cloud_config(other_key["key"], hostname="taken"))
    device = await ts.device_of("pool-0001")
    await ts.device_of("taken")
    assert device["tags"] == ["tag:aura-pool"]
    path = f"/api/v2/device/{device['nodeId']}/name"
    assert (await ts.api.post(path, json={"name": "acme-agent"})).status_code == 200
    renamed = (await ts.api.get(f"/api/v2/device/{device['nodeId']}")).json()
    assert renamed["name"] == f"acme-agent.{ts.tailnet.dns_suffix}"
    assert renamed["hostname"] == "pool-0001"
    taken = await ts.api.post(path, json={"name": "taken"})
    assert taken.status_code == 409 and "taken" in taken.json()["message"]
    assert (await ts.api.post(path, json={"name": 7})).status_code == 400
    assert (await ts.api.post(path, json={"name": ""})).status_code == 200
    reset = (await ts.api.get(f"/api/v2/device/{device['nodeId']}")).json()
    assert reset["name"] == f"pool-0001.{ts.tailnet.dns_suffix}"
    retag = await ts.api.post(
        f"/api/v2/device/{device['nodeId']}/tags", json={"tags": ["tag:aura-agent"]}
    )
    assert retag.status_code == 200
