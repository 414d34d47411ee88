"""Checkpoints end to end: the real operator, the real apiserver, the sandbox's disks.

Every test proves data with the simulated server's disk (a map of path -> bytes that a
snapshot copies and a rebuild or a create from it restores).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from aura.checkpoint_models import CHECKPOINT_PLURAL, RESTORE_PLURAL
from aura_sandbox.harness import Sandbox
from tests.kube import Cluster
from tests.operator.checkpoint_harness import (
    CHECKPOINT_FLAGS,
    checkpoint,
    get,
    images,
    read_file,
    restore,
    wait_status,
    write_file,
)
from tests.operator.harness import (
    OperatorProcess,
    agent_manifest,
    apply,
    apply_running,
    devices,
    events,
    servers_of,
    wait_for,
    wait_phase,
)

pytestmark = pytest.mark.integration
MARKER = "home/openclaw/.openclaw/workspace/marker.txt"
Start = Callable[..., OperatorProcess]


def test_checkpoint_then_restore_in_place_brings_the_old_data_back(
    cluster: Cluster, namespace: str, sandbox: Sandbox, start_operator: Start
) -> None:
    start_operator(**CHECKPOINT_FLAGS)
    agent = apply_running(cluster, namespace, "keeper")
    server = agent["status"]["server"]
    write_file(sandbox, server["id"], MARKER, b"before")

    checkpoint(cluster, namespace, "keeper-1", "keeper")  # the default mode: consistent
    done = wait_status(cluster, namespace, CHECKPOINT_PLURAL, "keeper-1", "Succeeded")
    status = done["status"]
    # Consistent: the gateway was stopped for the snapshot (the Agent said so) and runs again.
    assert "Checkpointing" in {e["reason"] for e in events(cluster, namespace, "keeper")}
    wait_for(lambda: sandbox.server(server["id"])["gateway"] == "serving", timeout=30)
    assert status["readyToUse"] is True
    assert status["sizeGB"] > 0
    assert status["source"]["serverType"] == "cx22"
    assert status["source"]["serverID"] == server["id"]
    uid = done["metadata"]["uid"]
    assert [i.id for i in images(sandbox, f"aura.dev/checkpoint-uid={uid}")] == [status["imageID"]]

    write_file(sandbox, server["id"], MARKER, b"after")
    restore(cluster, namespace, "back", "keeper", "keeper-1", targetReadinessPolicy="StopTarget")
    wait_status(cluster, namespace, RESTORE_PLURAL, "back", "Succeeded")
    again = wait_phase(cluster, namespace, "keeper", "Running", timeout=60)
    assert read_file(sandbox, server["id"], MARKER) == b"before"
    assert again["status"]["server"]["id"] == server["id"]  # in place: same server, same IPs
    assert again["status"]["server"]["ipv4"] == server["ipv4"]
    assert "Restoring" in {e["reason"] for e in events(cluster, namespace, "keeper")}


def test_restore_of_a_running_agent_with_fail_immediate_fails_and_touches_nothing(
    cluster: Cluster, namespace: str, sandbox: Sandbox, start_operator: Start
) -> None:
    start_operator(**CHECKPOINT_FLAGS)
    agent = apply_running(cluster, namespace, "busy")
    checkpoint(cluster, namespace, "busy-1", "busy", mode="online")
    wait_status(cluster, namespace, CHECKPOINT_PLURAL, "busy-1", "Succeeded")
    write_file(sandbox, agent["status"]["server"]["id"], MARKER, b"now")
    restore(cluster, namespace, "nope", "busy", "busy-1", targetReadinessPolicy="FailImmediate")
    failed = wait_status(cluster, namespace, RESTORE_PLURAL, "nope", "Failed")
    assert (
        "is not stopped (targetReadinessPolicy FailImmediate)"
        in failed["status"]["error"]["message"]
    )
    assert read_file(sandbox, agent["status"]["server"]["id"], MARKER) == b"now"
    wait_phase(cluster, namespace, "busy", "Running")


def test_a_new_agent_from_a_checkpoint_has_the_data_and_its_own_identity(
    cluster: Cluster, namespace: str, sandbox: Sandbox, start_operator: Start
) -> None:
    start_operator(**CHECKPOINT_FLAGS)
    original = apply_running(cluster, namespace, "origin")
    write_file(sandbox, original["status"]["server"]["id"], MARKER, b"shared memory")
    checkpoint(cluster, namespace, "origin-1", "origin", mode="online")
    wait_status(cluster, namespace, CHECKPOINT_PLURAL, "origin-1", "Succeeded")

    apply(cluster, agent_manifest("twin", namespace, source={"checkpoint": "origin-1"}))
    twin = wait_phase(cluster, namespace, "twin", "Running", timeout=90)
    assert read_file(sandbox, twin["status"]["server"]["id"], MARKER) == b"shared memory"
    assert twin["status"]["server"]["id"] != original["status"]["server"]["id"]
    assert twin["status"]["tailscale"]["deviceId"] != original["status"]["tailscale"]["deviceId"]
    for key in ("host-publickey", "ssh-publickey"):
        values = {cluster.core.read_namespaced_secret(f"{n}-ssh", namespace).data[key]
                  for n in ("origin", "twin")}  # fmt: skip
        assert len(values) == 2, f"the clone has its own {key}"
    user_data = next(s["user_data"] for s in servers_of(sandbox) if s["name"].endswith(
        twin["status"]["server"]["name"][-6:]))  # fmt: skip
    assert "rm -f /var/lib/tailscale/tailscaled.state" in user_data
    assert len({d["hostname"] for d in devices(sandbox)}) == 2
    assert read_file(sandbox, original["status"]["server"]["id"], MARKER) == b"shared memory"
    wait_phase(cluster, namespace, "origin", "Running")


def test_deleting_a_checkpoint_deletes_its_image_and_retain_keeps_it(
    cluster: Cluster, namespace: str, sandbox: Sandbox, start_operator: Start
) -> None:
    start_operator(**CHECKPOINT_FLAGS)
    apply_running(cluster, namespace, "tidy")
    checkpoint(cluster, namespace, "tidy-d", "tidy", mode="online")
    checkpoint(cluster, namespace, "tidy-r", "tidy", mode="online", deletionPolicy="Retain")
    for name in ("tidy-d", "tidy-r"):
        wait_status(cluster, namespace, CHECKPOINT_PLURAL, name, "Succeeded")
    assert len(images(sandbox)) == 2
    cluster.kubectl("delete", "agent", "tidy", "-n", namespace, "--wait=false")
    wait_for(lambda: get(cluster, namespace, CHECKPOINT_PLURAL, "tidy-d") is None, 60,
             what="Delete-policy checkpoint gone with its Agent")  # fmt: skip
    left = wait_for(lambda: images(sandbox) if len(images(sandbox)) == 1 else None, 60,
                    what="only the Retain image left")  # fmt: skip
    labels: dict[str, Any] = left[0].labels
    assert labels["aura.dev/deletion-policy"] == "Retain"
    assert labels["aura.dev/agent-name"] == "tidy"
    assert get(cluster, namespace, CHECKPOINT_PLURAL, "tidy-r") is not None


def test_deadline_exceeded_fails_and_leaves_no_image(
    cluster: Cluster, namespace: str, sandbox: Sandbox, start_operator: Start
) -> None:
    start_operator(**CHECKPOINT_FLAGS)
    agent = apply_running(cluster, namespace, "slow")
    # A big disk makes the snapshot take longer than the deadline.
    import httpx

    url = f"{sandbox.admin_url}/servers/{agent['status']['server']['id']}/disk"
    httpx.put(url, json={"base_gb": 30}, timeout=10).raise_for_status()
    checkpoint(cluster, namespace, "slow-1", "slow", mode="online", failureDeadline="3s")
    failed = wait_status(cluster, namespace, CHECKPOINT_PLURAL, "slow-1", "Failed", timeout=60)
    assert "deadline" in failed["status"]["error"]["message"]
    assert "imageID" not in failed["status"]
    wait_for(lambda: images(sandbox) == [], 30, what="no image left")
    wait_phase(cluster, namespace, "slow", "Running")


def test_schedule_with_keep_two_leaves_the_two_newest(
    cluster: Cluster, namespace: str, sandbox: Sandbox, start_operator: Start
) -> None:
    start_operator(**CHECKPOINT_FLAGS)
    apply(cluster, agent_manifest(
        "cron", namespace,
        checkpoints={"schedule": "* * * * *", "keep": 2, "mode": "online"},
    ))  # fmt: skip
    wait_phase(cluster, namespace, "cron", "Running")

    def names() -> list[str]:
        items = cluster.custom.list_namespaced_custom_object(
            "aura.dev", "v1alpha1", namespace, CHECKPOINT_PLURAL
        )["items"]
        return sorted(i["metadata"]["name"] for i in items)

    seen: set[str] = set()

    def three_periods() -> bool:
        seen.update(names())
        return len(seen) >= 3

    wait_for(three_periods, 200, interval=1, what="three scheduled checkpoints")
    kept = wait_for(lambda: names() if len(names()) == 2 else None, 30, what="pruned to two")
    assert kept == sorted(seen)[-2:], "the two newest stay"
    wait_for(lambda: len(images(sandbox)) == 2, 30, what="two images")
    cron: dict[str, Any] = get(cluster, namespace, "agents", "cron") or {}
    assert cron["status"]["checkpoints"]["lastCheckpoint"] in kept
    assert "nextCheckpointTime" in cron["status"]["checkpoints"]


def test_restore_rekeys_the_tailnet_when_the_device_was_removed_meanwhile(
    cluster: Cluster, namespace: str, sandbox: Sandbox, start_operator: Start
) -> None:
    start_operator(**CHECKPOINT_FLAGS)
    agent = apply_running(cluster, namespace, "lost")
    old_device = agent["status"]["tailscale"]["deviceId"]
    checkpoint(cluster, namespace, "lost-1", "lost", mode="online")
    wait_status(cluster, namespace, CHECKPOINT_PLURAL, "lost-1", "Succeeded")
    sandbox.call(lambda world: world._parts["tailnet"].delete_device(old_device))
    restore(cluster, namespace, "found", "lost", "lost-1", targetReadinessPolicy="StopTarget")
    wait_status(cluster, namespace, RESTORE_PLURAL, "found", "Succeeded")
    back = wait_phase(cluster, namespace, "lost", "Running", timeout=90)
    new_device = back["status"]["tailscale"]["deviceId"]
    assert new_device != old_device
    (device,) = devices(sandbox)  # the old device is not back, and only one exists
    assert new_device in (device["id"], device["node_id"])
    assert "TailnetRekey" in {e["reason"] for e in events(cluster, namespace, "lost")}
