"""Checkpoints and restores survive SIGKILL of the operator at the worst moments, and a
checkpoint can be deleted while it is still in progress.

Converged means: exactly one image per checkpoint, no image without a checkpoint, the Agent
released (back to Running) and, for a restore, the old data on the same server.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
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
    apply_running,
    get_agent,
    servers_of,
    wait_for,
    wait_phase,
)

pytestmark = pytest.mark.integration
MARKER = "home/openclaw/.openclaw/workspace/marker.txt"
Start = Callable[..., OperatorProcess]


def _big_disk(sandbox: Sandbox, server_id: int, gb: int) -> None:
    """Make the snapshot slow: `create_image` takes 45 s + 10 s per used GB (scaled)."""
    url = f"{sandbox.admin_url}/servers/{server_id}/disk"
    httpx.put(url, json={"base_gb": gb}, timeout=10).raise_for_status()


def test_sigkill_mid_checkpoint_converges_to_one_image(
    cluster: Cluster, namespace: str, sandbox: Sandbox, start_operator: Start
) -> None:
    op = start_operator(**CHECKPOINT_FLAGS)
    agent = apply_running(cluster, namespace, "crashy")
    _big_disk(sandbox, agent["status"]["server"]["id"], 10)
    checkpoint(cluster, namespace, "crashy-1", "crashy", mode="online")
    wait_status(cluster, namespace, CHECKPOINT_PLURAL, "crashy-1", "InProgress", timeout=30)
    op.kill()
    start_operator(**CHECKPOINT_FLAGS)
    done = wait_status(cluster, namespace, CHECKPOINT_PLURAL, "crashy-1", "Succeeded", timeout=90)
    uid = done["metadata"]["uid"]
    assert [i.id for i in images(sandbox, f"aura.dev/checkpoint-uid={uid}")] == [
        done["status"]["imageID"]
    ]
    assert len(images(sandbox)) == 1, "no image without its checkpoint"
    wait_phase(cluster, namespace, "crashy", "Running")
    assert "checkpointInProgress" not in (get_agent(cluster, namespace, "crashy") or {})["status"]


def test_sigkill_mid_restore_converges_with_the_old_data(
    cluster: Cluster, namespace: str, sandbox: Sandbox, start_operator: Start
) -> None:
    op = start_operator(**CHECKPOINT_FLAGS)
    agent = apply_running(cluster, namespace, "phoenix")
    server_id = agent["status"]["server"]["id"]
    write_file(sandbox, server_id, MARKER, b"old")
    checkpoint(cluster, namespace, "phoenix-1", "phoenix", mode="online")
    wait_status(cluster, namespace, CHECKPOINT_PLURAL, "phoenix-1", "Succeeded")
    write_file(sandbox, server_id, MARKER, b"new")
    restore(cluster, namespace, "undo", "phoenix", "phoenix-1", targetReadinessPolicy="StopTarget")
    wait_status(cluster, namespace, RESTORE_PLURAL, "undo", "InProgress", timeout=30)
    op.kill()
    start_operator(**CHECKPOINT_FLAGS)
    wait_status(cluster, namespace, RESTORE_PLURAL, "undo", "Succeeded", timeout=90)
    back = wait_phase(cluster, namespace, "phoenix", "Running", timeout=90)
    assert back["status"]["server"]["id"] == server_id
    assert read_file(sandbox, server_id, MARKER) == b"old"
    uid = back["metadata"]["uid"]
    assert len(servers_of(sandbox, uid)) == 1, "no second server"
    assert len(images(sandbox)) == 1


def test_deleting_a_checkpoint_stuck_in_progress_completes(
    cluster: Cluster, namespace: str, sandbox: Sandbox, start_operator: Start
) -> None:
    start_operator(**CHECKPOINT_FLAGS)
    agent = apply_running(cluster, namespace, "stuck")
    _big_disk(sandbox, agent["status"]["server"]["id"], 35)  # about 8 s at this time scale

    def image_recorded() -> bool:
        obj = get(cluster, namespace, CHECKPOINT_PLURAL, "stuck-1") or {}
        return "imageID" in (obj.get("status") or {})

    checkpoint(cluster, namespace, "stuck-1", "stuck", mode="online")
    wait_for(image_recorded, 30, what="the image being created")
    cluster.kubectl("delete", "ackpt", "stuck-1", "-n", namespace, "--wait=false")
    wait_for(lambda: get(cluster, namespace, CHECKPOINT_PLURAL, "stuck-1") is None, 90,
             what="the checkpoint deleted")  # fmt: skip
    wait_for(lambda: images(sandbox) == [], 30, what="its image deleted")
    wait_phase(cluster, namespace, "stuck", "Running")
