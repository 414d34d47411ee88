"""End to end through the whole sandbox: mint a key over `/api/v2`, create a Hetzner server
over `/v1` whose cloud-init runs `tailscale up`, and follow its device. Plain HTTP (httpx) for
Tailscale, the official hcloud client for Hetzner; every response is checked against its spec.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hcloud
import httpx
import pytest

from aura_sandbox.harness import ReadyInfo, Sandbox, SandboxProcess
from tests.sandbox import tailscale_openapi
from tests.sandbox.hetzner_support import create
from tests.sandbox.tailscale_support import cloud_config


def _check(response: httpx.Response) -> None:
    response.read()
    if response.request.url.path.startswith("/api/v2"):
        tailscale_openapi.validate(
            response.request.method,
            response.request.url.path,
            response.status_code,
            response.content,
        )


def tailscale_client(info: ReadyInfo) -> httpx.Client:
    """An httpx client logged in with the sandbox's OAuth client, like the operator will be."""
    base = info.tailscale_url
    r = httpx.post(
        f"{base}/api/v2/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(info.tailscale_client_id, info.tailscale_client_secret),
    )
    _check(r)
    assert r.status_code == 200, r.text
    return httpx.Client(
        base_url=base,
        headers={"Authorization": f"Bearer {r.json()['access_token']}"},
        event_hooks={"response": [_check]},
        timeout=10,
    )


@pytest.fixture
def ts(sandbox: Sandbox) -> Iterator[httpx.Client]:
    with tailscale_client(sandbox.ready) as client:
        yield client


def mint(ts: httpx.Client, **create_caps: Any) -> str:
    caps = {"tags": ["tag:aura-agent"], "preauthorized": True, **create_caps}
    r = ts.post("/api/v2/tailnet/-/keys", json={"capabilities": {"devices": {"create": caps}}})
    assert r.status_code == 200, r.text
    key: str = r.json()["key"]
    return key


def wait_device(ts: httpx.Client, hostname: str, timeout: float = 10.0, **extra: str) -> Any:
    """Poll the device list like the terraform provider does (once per interval)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = ts.get("/api/v2/tailnet/-/devices", params={"hostname": hostname, **extra})
        devices = r.json()["devices"]
        if devices:
            assert len(devices) == 1, devices
            return devices[0]
        time.sleep(0.05)
    raise AssertionError(f"no device {hostname} within {timeout} s")


def wait_connected(ts: httpx.Client, node_id: str, want: bool, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        device = ts.get(f"/api/v2/device/{node_id}").json()
        if device["connectedToControl"] is want:
            return device
        time.sleep(0.05)
    raise AssertionError(f"device {node_id} never reached connectedToControl={want}")


def wait_decided(sandbox: Sandbox, server_name: str, timeout: float = 10.0) -> None:
    """Wait until the sandbox has decided whether `server_name` joins (admin view)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        joins = httpx.get(f"{sandbox.ready.admin_url}/tailnet/joins").json()["joins"]
        if any(j["server_name"] == server_name and j["outcome"] != "pending" for j in joins):
            return
        time.sleep(0.05)
    raise AssertionError(f"join of {server_name} still undecided after {timeout} s")


def test_server_with_cloud_init_joins_and_follows_power(
    sandbox: Sandbox, client: hcloud.Client, ts: httpx.Client
) -> None:
    key = mint(ts)
    server = create(client, "agent-e2e", user_data=cloud_config(key, "aura-agent-e2e")).server
    device = wait_device(ts, "aura-agent-e2e", tags="tag:aura-agent")
    assert device["name"] == f"aura-agent-e2e.{sandbox.ready.tailscale_tailnet}"
    assert device["authorized"] is True
    assert device["connectedToControl"] is True

    client.servers.power_off(server).wait_until_finished()
    off = wait_connected(ts, device["nodeId"], False)
    assert off["lastSeen"]
    client.servers.power_on(server).wait_until_finished()
    wait_connected(ts, device["nodeId"], True)

    client.servers.delete(server)
    kept = wait_connected(ts, device["nodeId"], False)
    assert kept["isEphemeral"] is False  # a persistent device outlives its server
    assert ts.delete(f"/api/v2/device/{device['nodeId']}").status_code == 200
    gone = ts.get(f"/api/v2/device/{device['nodeId']}")
    assert gone.status_code == 404
    admin = httpx.get(f"{sandbox.ready.admin_url}/tailnet/devices").json()
    assert admin == {"devices": []}


def test_single_use_key_and_never_joins_fault(
    sandbox: Sandbox, client: hcloud.Client, ts: httpx.Client
) -> None:
    key = mint(ts)
    sandbox.inject("device_never_joins", server_name="unlucky")
    create(client, "unlucky", user_data=cloud_config(key, "unlucky"))
    create(client, "winner", user_data=cloud_config(key, "winner"))
    wait_device(ts, "winner")
    create(client, "loser", user_data=cloud_config(key, "loser"))
    wait_decided(sandbox, "loser")
    for hostname in ("unlucky", "loser"):
        r = ts.get("/api/v2/tailnet/-/devices", params={"hostname": hostname})
        assert r.json() == {"devices": []}
    joins = httpx.get(f"{sandbox.ready.admin_url}/tailnet/joins").json()["joins"]
    outcome = {j["server_name"]: (j["outcome"], j["reason"]) for j in joins}
    assert outcome["unlucky"] == ("failed", "fault device_never_joins")
    assert outcome["winner"][0] == "joined"
    assert outcome["loser"][0] == "failed"
    world = httpx.get(f"{sandbox.ready.admin_url}/world").json()
    assert world["tailnet"]["devices"] == 1


def test_ephemeral_device_cleaned_up_after_its_server_is_deleted() -> None:
    # 30 simulated minutes at 0.0005 are 0.9 s; boots and joins are then a few ms.
    with Sandbox(time_scale=0.0005) as sb, tailscale_client(sb.ready) as ts:
        key = mint(ts, ephemeral=True)
        fast = sb.ready.hcloud()
        server = create(fast, "eph-e2e", user_data=cloud_config(key, "eph-e2e")).server
        device = wait_device(ts, "eph-e2e")
        assert device["isEphemeral"] is True
        fast.servers.delete(server)
        deadline = time.monotonic() + 10
        while ts.get(f"/api/v2/device/{device['nodeId']}").status_code != 404:
            assert time.monotonic() < deadline, "ephemeral device never cleaned up"
            time.sleep(0.05)


def test_tailnet_survives_a_sandbox_restart(tmp_path: Path) -> None:
    state = tmp_path / "world.json"
    args = ("--time-scale", "0.01", "--state", str(state))
    with SandboxProcess(*args) as proc, tailscale_client(proc.ready) as ts:
        key = mint(ts, reusable=True)
        create(proc.ready.hcloud(), "persisted", user_data=cloud_config(key, "persisted"))
        device = wait_device(ts, "persisted")
        assert proc.terminate() == 0
    saved = json.loads(state.read_text())
    assert "tailnet" in saved["parts"]
    assert key not in json.dumps(saved["parts"]["tailnet"]["devices"])
    with SandboxProcess(*args) as proc:
        # Access tokens are persisted too: the operator's cached token keeps working.
        r = httpx.get(
            f"{proc.ready.tailscale_url}/api/v2/device/{device['nodeId']}",
            headers=ts.headers,
        )
        _check(r)
        assert r.status_code == 200
        assert r.json()["name"] == device["name"]
