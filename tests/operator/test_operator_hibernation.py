"""Hibernation end to end: the real operator, the real apiserver, the sandbox's disks.

Hibernated means no server in Hetzner (asked with the official `hcloud` client), one snapshot
image labelled with the Agent, no tailnet device; waking means a server created from that
image with the disk marker written before hibernation.
"""

from __future__ import annotations

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
    back = wait_phase(cluster, namespace, "fragile", "Running", timeout=90)
    new = back["status"]["server"]["id"]
    assert new != old
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
