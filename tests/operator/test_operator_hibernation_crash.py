"""Hibernation and waking survive SIGKILL of the operator, and a failed wake keeps the data.

Converged means: a hibernated Agent has no server, exactly one image (its checkpoint's) and no
tailnet device; an awake one exactly one server, created from that image, with the data.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from aura.checkpoint_models import CHECKPOINT_PLURAL
from aura_sandbox.harness import Sandbox
from tests.kube import Cluster
from tests.operator.checkpoint_harness import CHECKPOINT_FLAGS, get, images, read_file, write_file
from tests.operator.harness import (
    OperatorProcess,
    condition,
    devices,
    get_agent,
    patch_spec,
    wait_for,
    wait_phase,
)
from tests.operator.test_operator_hibernation import _big_disk, _running, _servers

pytestmark = pytest.mark.integration
MARKER = "home/openclaw/.openclaw/workspace/marker.txt"
Start = Callable[..., OperatorProcess]


def _status(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    return dict((get_agent(cluster, namespace, name) or {}).get("status") or {})


def _checkpoint_phase(cluster: Cluster, namespace: str, name: str) -> str | None:
    hib = _status(cluster, namespace, name).get("hibernation") or {}
    found = get(cluster, namespace, CHECKPOINT_PLURAL, hib.get("checkpoint") or "-") or {}
    return (found.get("status") or {}).get("phase")


def test_sigkill_while_hibernating_and_while_waking_converges(
    cluster: Cluster, namespace: str, sandbox: Sandbox, start_operator: Start
) -> None:
    op = start_operator(**CHECKPOINT_FLAGS)
    agent = _running(cluster, namespace, "insomniac")
    uid, server_id = agent["metadata"]["uid"], agent["status"]["server"]["id"]
    hostname = agent["status"]["tailscale"]["hostname"]
    write_file(sandbox, server_id, MARKER, b"precious")
    _big_disk(sandbox, server_id, 35)  # the snapshot takes about 8 s at this time scale

    patch_spec(cluster, namespace, "insomniac", {"desiredState": "hibernated"})
    wait_for(lambda: _checkpoint_phase(cluster, namespace, "insomniac") == "InProgress", 60,
             what="the hibernation checkpoint in progress")  # fmt: skip
    op.kill()
    op = start_operator(**CHECKPOINT_FLAGS)
    slept = wait_phase(cluster, namespace, "insomniac", "Hibernated", timeout=120)
    hib = slept["status"]["hibernation"]
    assert _servers(sandbox, uid) == []
    assert [i.id for i in images(sandbox, f"aura.dev/agent-uid={uid}")] == [hib["imageID"]]
    assert len(images(sandbox)) == 1, "no image without its checkpoint"
    assert hostname not in {d["hostname"] for d in devices(sandbox)}
    assert _checkpoint_phase(cluster, namespace, "insomniac") == "Succeeded"

    patch_spec(cluster, namespace, "insomniac", {"desiredState": "running"})

    def created() -> bool:
        status = _status(cluster, namespace, "insomniac")
        return status.get("phase") == "Waking" and bool((status.get("server") or {}).get("id"))

    wait_for(created, 60, what="the wake's server created")
    op.kill()
    start_operator(**CHECKPOINT_FLAGS)
    woke = wait_phase(cluster, namespace, "insomniac", "Running", timeout=120)
    [server] = _servers(sandbox, uid)
    assert server.id == woke["status"]["server"]["id"]
    assert server.image.id == hib["imageID"]
    assert read_file(sandbox, server.id, MARKER) == b"precious"
    assert [i.id for i in images(sandbox)] == [hib["imageID"]], "the checkpoint is intact"
    assert len([d for d in devices(sandbox) if d["hostname"] == hostname]) == 1


def test_a_failed_wake_rolls_back_keeps_the_checkpoint_and_retries_from_it(
    cluster: Cluster, namespace: str, sandbox: Sandbox, start_operator: Start
) -> None:
    start_operator(**CHECKPOINT_FLAGS, boot_timeout="3", attempt_backoff_max="60")
    agent = _running(cluster, namespace, "groggy")
    uid, name = agent["metadata"]["uid"], agent["status"]["server"]["name"]
    write_file(sandbox, agent["status"]["server"]["id"], MARKER, b"dreams")
    patch_spec(cluster, namespace, "groggy", {"desiredState": "hibernated"})
    slept = wait_phase(cluster, namespace, "groggy", "Hibernated", timeout=90)
    hib = slept["status"]["hibernation"]

    sandbox.inject("server_never_boots", server_name=name)
    patch_spec(cluster, namespace, "groggy", {"desiredState": "running"})
    failed = wait_phase(cluster, namespace, "groggy", "Failed", timeout=60)
    assert "ServerNeverBooted" in condition(failed, "Ready")["message"]
    assert failed["status"]["serverSource"]["imageID"] == hib["imageID"]
    assert [i.id for i in images(sandbox, f"aura.dev/agent-uid={uid}")] == [hib["imageID"]]
    assert _checkpoint_phase(cluster, namespace, "groggy") == "Succeeded"

    woke = wait_phase(cluster, namespace, "groggy", "Running", timeout=90)  # retried by itself
    [server] = _servers(sandbox, uid)
    assert server.image.id == hib["imageID"]
    assert read_file(sandbox, server.id, MARKER) == b"dreams"
    assert "provisioning" not in woke["status"], "the attempt ended"
