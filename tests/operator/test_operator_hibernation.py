"""Hibernation end to end: the real operator, the real apiserver, the sandbox's disks.

Hibernated means no server in Hetzner (asked with the official `hcloud` client), one snapshot
image labelled with the Agent, no tailnet device (or, under `tailnetOnHibernate: keep`, the
same device offline); waking means a server created from that image with the disk marker
written before hibernation.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from aura.checkpoint_models import CHECKPOINT_PLURAL
from aura_sandbox.harness import Sandbox
from tests.kube import Cluster
from tests.operator.checkpoint_harness import (
    CHECKPOINT_FLAGS,
    checkpoint,
    get,
    images,
    read_file,
    wait_status,
    write_file,
)
from tests.operator.harness import (
    OperatorProcess,
    agent_manifest,
    apply,
    condition,
    devices,
    events,
    get_agent,
    patch_spec,
    wait_for,
    wait_phase,
)

pytestmark = pytest.mark.integration
MARKER = "home/openclaw/.openclaw/workspace/marker.txt"
Start = Callable[..., OperatorProcess]


def _servers(sandbox: Sandbox, uid: str) -> list[Any]:
    """The Agent's servers as the official client lists them."""
    client = sandbox.ready.hcloud()
    return list(client.servers.get_all(label_selector=f"aura.dev/agent-uid={uid}"))


def _running(cluster: Cluster, namespace: str, name: str, **spec: Any) -> dict[str, Any]:
    apply(cluster, agent_manifest(name, namespace, **spec))
    return wait_phase(cluster, namespace, name, "Running", timeout=90)


def _big_disk(sandbox: Sandbox, server_id: int, gb: int) -> None:
    """Slow the snapshot (and a restore from it) down: both grow with the used GB."""
    url = f"{sandbox.ready.admin_url}/servers/{server_id}/disk"
    httpx.put(url, json={"base_gb": gb}, timeout=10).raise_for_status()


def _assert_hibernated(sandbox: Sandbox, agent: dict[str, Any], hostname: str) -> dict[str, Any]:
    uid = agent["metadata"]["uid"]
    hib = agent["status"]["hibernation"]
    assert hib["state"] == "Hibernated"
    assert _servers(sandbox, uid) == [], "no server bills while hibernated"
    found = images(sandbox, f"aura.dev/agent-uid={uid}")
    assert [i.id for i in found] == [hib["imageID"]], "exactly one image: the checkpoint's"
    assert found[0].labels["aura.dev/agent-name"] == agent["metadata"]["name"]
    assert found[0].labels["aura.dev/checkpoint-name"] == hib["checkpoint"]
    assert hostname not in {d["hostname"] for d in devices(sandbox)}, "device removed"
    assert "server" not in agent["status"]
    return dict(hib)


def test_hibernate_deletes_the_server_and_wake_brings_the_data_back(
    cluster: Cluster, namespace: str, sandbox: Sandbox, start_operator: Start
) -> None:
    start_operator(**CHECKPOINT_FLAGS)
    agent = _running(cluster, namespace, "sleepy")
    uid, server = agent["metadata"]["uid"], agent["status"]["server"]
    hostname = agent["status"]["tailscale"]["hostname"]
    write_file(sandbox, server["id"], MARKER, b"remember me")

    patch_spec(cluster, namespace, "sleepy", {"desiredState": "hibernated"})
    slept = wait_phase(cluster, namespace, "sleepy", "Hibernated", timeout=90)
    hib = _assert_hibernated(sandbox, slept, hostname)
    ckpt = get(cluster, namespace, CHECKPOINT_PLURAL, hib["checkpoint"]) or {}
    assert ckpt["status"]["indications"] == ["PoweredOff"], "taken from the powered-off disk"
    # cx22 in nbg1: 3.79 + 0.50 (IPv4) - ~2 GB x 0.011 per month
    assert 4.0 < hib["monthlySaving"] < 4.29
    assert hib["currency"] == "EUR"
    assert hib["checkpoint"] in condition(slept, "Ready")["message"]
    assert slept["spec"]["desiredState"] == "hibernated"

    patch_spec(cluster, namespace, "sleepy", {"desiredState": "running"})
    woke = wait_phase(cluster, namespace, "sleepy", "Running", timeout=90)
    new_id = woke["status"]["server"]["id"]
    assert new_id != server["id"]
    [again] = _servers(sandbox, uid)
    assert again.id == new_id
    assert again.image.id == hib["imageID"], "created from the hibernation image"
    assert read_file(sandbox, new_id, MARKER) == b"remember me"
    assert woke["status"]["tailscale"]["hostname"] == hostname
    assert woke["status"]["tailscale"]["deviceId"] != agent["status"]["tailscale"]["deviceId"]
    assert "hibernation" not in woke["status"] and "serverSource" not in woke["status"]
    history = events(cluster, namespace, "sleepy")
    reasons = [e["reason"] for e in history]
    for seen in ("Hibernating", "Hibernated", "Waking", "Woke"):
        assert seen in reasons
    assert reasons.index("Hibernated") < reasons.index("Waking") < reasons.index("Woke")
    phases = [e["reason"] for e in history if " -> " in e["message"]]  # phase changes
    assert phases[phases.index("Hibernating") :] == [
        "Hibernating", "Hibernated", "Waking", "Configuring", "Networking", "Running",
    ]  # fmt: skip


def _tailnet_keys(sandbox: Sandbox) -> dict[str, dict[str, Any]]:
    """Every auth key the sandbox's tailnet ever minted, by ID (without secrets)."""
    return sandbox.call(lambda w: {k["id"]: k for k in w._parts["tailnet"].keys_summary()})


def _key_id(cluster: Cluster, namespace: str, agent: str) -> str:
    secret = cluster.core.read_namespaced_secret(f"{agent}-tailnet-authkey", namespace)
    return base64.b64decode(secret.data["key-id"]).decode()


def test_keep_wakes_as_the_same_tailnet_device(
    cluster: Cluster, namespace: str, sandbox: Sandbox, start_operator: Start
) -> None:
    """`tailnetOnHibernate: keep`: the device stays (offline) while the Agent sleeps, and the
    server created from the checkpoint is that device again, from the node state on the image.

    Auth keys under keep: the key the first server joined with is spent and is revoked at
    hibernation like under remove. The wake mints a fresh single-use key for cloud-init (the
    fallback should the kept device be gone by then); the node comes back by its stored key,
    so that key is never used, and once the device is confirmed the operator revokes it: no
    live key is left in a Secret or in the server's user_data."""
    start_operator(**CHECKPOINT_FLAGS)
    agent = _running(cluster, namespace, "keeper", lifecycle={"tailnetOnHibernate": "keep"})
    uid, server = agent["metadata"]["uid"], agent["status"]["server"]
    tailscale = agent["status"]["tailscale"]
    hostname, device_id = tailscale["hostname"], tailscale["deviceId"]
    first_key = _key_id(cluster, namespace, "keeper")
    write_file(sandbox, server["id"], MARKER, b"kept")

    patch_spec(cluster, namespace, "keeper", {"desiredState": "hibernated"})
    slept = wait_phase(cluster, namespace, "keeper", "Hibernated", timeout=90)
    hib = slept["status"]["hibernation"]
    assert _servers(sandbox, uid) == [], "no server bills while hibernated"
    assert [i.id for i in images(sandbox, f"aura.dev/agent-uid={uid}")] == [hib["imageID"]]
    [kept] = [d for d in devices(sandbox) if d["hostname"] == hostname]
    assert kept["node_id"] == device_id, "the device stays in the tailnet"
    assert kept["connected"] is False and kept["server_id"] is None
    assert _tailnet_keys(sandbox)[first_key]["revoked"], "the spent key is revoked"

    patch_spec(cluster, namespace, "keeper", {"desiredState": "running"})
    woke = wait_phase(cluster, namespace, "keeper", "Running", timeout=90)
    new_id = woke["status"]["server"]["id"]
    assert new_id != server["id"]
    assert read_file(sandbox, new_id, MARKER) == b"kept"
    user_data = sandbox.call(lambda w: w.servers[new_id].user_data)
    assert "tailscaled.state" not in user_data, "keep: cloud-init keeps the image's node"
    assert woke["status"]["tailscale"]["deviceId"] == device_id
    assert woke["status"]["tailscale"]["hostname"] == hostname
    same = [d for d in devices(sandbox) if d["hostname"] == hostname]
    assert [d["node_id"] for d in same] == [device_id], "one device, no `-1` duplicate"
    assert same[0]["name"].split(".")[0] == kept["name"].split(".")[0] == hostname
    assert same[0]["server_id"] == new_id and same[0]["connected"] is True
    joins = sandbox.call(lambda w: w._parts["tailnet"].joins_summary())
    [join] = [j for j in joins if j["server_id"] == new_id]
    assert join["outcome"] == "joined" and "auth key not used" in join["reason"], join
    wake_keys = {k: v for k, v in _tailnet_keys(sandbox).items() if k != first_key}
    assert len(wake_keys) == 1, wake_keys
    [wake_key] = wake_keys.values()
    assert wake_key["uses"] == 0, "the node came back by its stored key, not the auth key"
    assert wake_key.get("revoked"), "the unused wake key is revoked once the node is back"
    secrets = {s.metadata.name for s in cluster.core.list_namespaced_secret(namespace).items}
    assert "keeper-tailnet-authkey" not in secrets
    joined = condition(woke, "TailnetJoined")
    assert joined["status"] == "True" and device_id in joined["message"]


def test_a_stopped_agent_hibernates_by_itself_after_hibernate_after(
    cluster: Cluster, namespace: str, sandbox: Sandbox, start_operator: Start
) -> None:
    start_operator(**CHECKPOINT_FLAGS, hibernate_after="3")
    agent = _running(cluster, namespace, "idle")
    write_file(sandbox, agent["status"]["server"]["id"], MARKER, b"idle data")
    patch_spec(cluster, namespace, "idle", {"desiredState": "stopped"})
    wait_phase(cluster, namespace, "idle", "Stopped", timeout=30)
    slept = wait_phase(cluster, namespace, "idle", "Hibernated", timeout=90)
    hib = _assert_hibernated(sandbox, slept, agent["status"]["tailscale"]["hostname"])
    assert hib["cause"] == "automatic"
    assert slept["spec"]["desiredState"] == "stopped", "desiredState is left as it was"
    ready = condition(slept, "Ready")
    assert ready["reason"] == "Hibernated"
    assert "automatically" in ready["message"] and hib["checkpoint"] in ready["message"]
    assert hib["since"][:16] in ready["message"]

    patch_spec(cluster, namespace, "idle", {"desiredState": "running"})
    woke = wait_phase(cluster, namespace, "idle", "Running", timeout=90)
    assert read_file(sandbox, woke["status"]["server"]["id"], MARKER) == b"idle data"


def test_a_server_deleted_behind_our_back_comes_back_from_the_newest_checkpoint(
    cluster: Cluster, namespace: str, sandbox: Sandbox, start_operator: Start
) -> None:
    start_operator(**CHECKPOINT_FLAGS)
    agent = _running(cluster, namespace, "fragile")
    old = agent["status"]["server"]["id"]
    write_file(sandbox, old, MARKER, b"saved")
    checkpoint(cluster, namespace, "fragile-1", "fragile", mode="online")
    done = wait_status(cluster, namespace, CHECKPOINT_PLURAL, "fragile-1", "Succeeded")
    write_file(sandbox, old, MARKER, b"after the checkpoint")

    client = sandbox.ready.hcloud()
    client.servers.delete(client.servers.get_by_id(old))

    def missing_event() -> str | None:
        found = [e for e in events(cluster, namespace, "fragile") if e["reason"] == "ServerMissing"]
        return found[0]["message"] if found else None

    message = wait_for(missing_event, 60, what="the ServerMissing Event")
    assert "checkpoint fragile-1" in message and "ago" in message
    assert "changes since then are lost" in message

    def replaced() -> dict[str, Any] | None:
        # The Event comes before the status write, so the old Running status may
        # still be there: wait for Running on a server other than the deleted one.
        found = get_agent(cluster, namespace, "fragile") or {}
        status = found.get("status", {})
        running = status.get("phase") == "Running"
        return found if running and status.get("server", {}).get("id") != old else None

    back = wait_for(replaced, 90, what="fragile Running on a new server")
    new = back["status"]["server"]["id"]
    assert client.servers.get_by_id(new).image.id == done["status"]["imageID"]
    assert read_file(sandbox, new, MARKER) == b"saved"
    assert "serverSource" not in back["status"]


def test_a_failed_hibernation_checkpoint_keeps_the_server_powered_off(
    cluster: Cluster, namespace: str, sandbox: Sandbox, start_operator: Start
) -> None:
    start_operator(**CHECKPOINT_FLAGS, checkpoint_deadline="2", attempt_backoff_max="600")
    agent = _running(cluster, namespace, "stubborn")
    server_id = agent["status"]["server"]["id"]
    _big_disk(sandbox, server_id, 35)  # the snapshot outlasts the 2 s deadline
    patch_spec(cluster, namespace, "stubborn", {"desiredState": "hibernated"})
    failed = wait_phase(cluster, namespace, "stubborn", "Failed", timeout=90)
    ready = condition(failed, "Ready")
    assert ready["reason"] == "HibernationFailed"
    assert f"server {server_id} is kept (powered off)" in ready["message"]
    assert "deadline" in ready["message"]
    [server] = _servers(sandbox, agent["metadata"]["uid"])
    assert server.id == server_id and server.status == "off"
    assert "HibernationFailed" in {e["reason"] for e in events(cluster, namespace, "stubborn")}
