"""Retention after cancellation (`--retain-after-delete`) end to end: the real operator, the
real apiserver, the sandbox's disks and the official hcloud client.

A deleted Agent's data goes into a final checkpoint before its server is deleted; a customer
who returns within the window gets an Agent created from it (what the bridge does on their new
checkout: `spec.source.checkpoint`); when the window ends the image is erased and recorded."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from aura.checkpoint_models import CHECKPOINT_PLURAL
from aura.controller.checkpoints.final import final_name
from aura_sandbox.harness import Sandbox
from tests.kube import Cluster
from tests.operator.checkpoint_harness import CHECKPOINT_FLAGS, get, images, read_file, write_file
from tests.operator.harness import (
    OperatorProcess,
    agent_manifest,
    apply,
    events,
    get_agent,
    patch_spec,
    servers_of,
    wait_for,
    wait_phase,
)

pytestmark = pytest.mark.integration
MARKER = "home/openclaw/.openclaw/workspace/marker.txt"
CUSTOMER = "cus_loyal0001"
WINDOW = "25"
Start = Callable[..., OperatorProcess]


def test_final_checkpoint_before_the_server_goes_return_within_the_window_then_erasure(
    cluster: Cluster, namespace: str, sandbox: Sandbox, start_operator: Start
) -> None:
    start_operator(**CHECKPOINT_FLAGS, retain_after_delete=WINDOW)
    billing = {"customerId": CUSTOMER, "subscriptionId": "sub_loyal0001"}
    apply(cluster, agent_manifest("loyal", namespace, billing=billing))
    agent = wait_phase(cluster, namespace, "loyal", "Running", timeout=60)
    server_id = agent["status"]["server"]["id"]
    write_file(sandbox, server_id, MARKER, b"kept for the customer")
    final = final_name("loyal", agent["metadata"]["uid"])

    patch_spec(cluster, namespace, "loyal", {"desiredState": "deleted"})
    # Never a moment where the server is gone and the final checkpoint is not ready.
    seen: list[tuple[str | None, bool]] = []

    def deleted() -> bool:
        ckpt = get(cluster, namespace, CHECKPOINT_PLURAL, final) or {}
        exists = any(s["id"] == server_id for s in servers_of(sandbox))
        seen.append(((ckpt.get("status") or {}).get("phase"), exists))
        phase = ((get_agent(cluster, namespace, "loyal") or {}).get("status") or {}).get("phase")
        return phase == "Deleted"

    wait_for(deleted, 90, what="Agent deleted after its final checkpoint")
    assert ("Succeeded", True) in seen, seen
    assert all(phase == "Succeeded" for phase, exists in seen if not exists), seen
    reasons = [e["reason"] for e in events(cluster, namespace, "loyal")]
    assert reasons.index("FinalCheckpoint") < reasons.index("ServerDeleted")

    ckpt = get(cluster, namespace, CHECKPOINT_PLURAL, final)
    assert ckpt is not None
    labels = ckpt["metadata"]["labels"]
    assert labels["aura.dev/stripe-customer"] == CUSTOMER
    assert labels["aura.dev/retained-agent"] == "loyal"
    image_id = ckpt["status"]["imageID"]
    kept = images(sandbox, f"aura.dev/stripe-customer={CUSTOMER}")
    assert [i.id for i in kept] == [image_id]
    assert kept[0].labels["aura.dev/deletion-policy"] == "Retain"
    assert not [s for s in servers_of(sandbox) if s["id"] == server_id]

    # The customer returns: the bridge replaces the deleted record with an Agent of the same
    # name whose source is the retained checkpoint (tests/bridge/test_dunning.py checks that).
    cluster.kubectl("delete", "agent", "loyal", "-n", namespace, "--wait=true")
    source = {"checkpoint": final}
    apply(cluster, agent_manifest("loyal", namespace, billing=billing, source=source))
    back = wait_phase(cluster, namespace, "loyal", "Running", timeout=90)
    assert read_file(sandbox, back["status"]["server"]["id"], MARKER) == b"kept for the customer"

    # The window ends: the image is erased, the record says what, when and by which rule.
    def erased() -> dict[str, Any] | None:
        obj = get(cluster, namespace, CHECKPOINT_PLURAL, final) or {}
        return obj if (obj.get("status") or {}).get("phase") == "Erased" else None

    record = wait_for(erased, 60, what="final checkpoint erased at the window's end")["status"]
    assert record["readyToUse"] is False
    assert record["erasure"]["imageID"] == image_id
    assert "--retain-after-delete" in record["erasure"]["rule"]
    assert CUSTOMER in record["erasure"]["rule"]
    assert images(sandbox, f"aura.dev/stripe-customer={CUSTOMER}") == []
    erasures = [e for e in events(cluster, namespace, "loyal") if e["reason"] == "CheckpointErased"]
    assert erasures and str(image_id) in erasures[0]["message"]
    # The returned Agent runs on, on its own server.
    assert wait_phase(cluster, namespace, "loyal", "Running")


def test_a_hibernated_agent_cancelled_keeps_its_hibernation_checkpoint_as_the_final_one(
    cluster: Cluster, namespace: str, sandbox: Sandbox, start_operator: Start
) -> None:
    start_operator(**CHECKPOINT_FLAGS, retain_after_delete="3600")
    billing = {"customerId": CUSTOMER, "subscriptionId": "sub_loyal0002"}
    apply(cluster, agent_manifest("dozy", namespace, billing=billing))
    agent = wait_phase(cluster, namespace, "dozy", "Running", timeout=60)
    write_file(sandbox, agent["status"]["server"]["id"], MARKER, b"asleep when cancelled")
    patch_spec(cluster, namespace, "dozy", {"desiredState": "hibernated"})
    slept = wait_phase(cluster, namespace, "dozy", "Hibernated", timeout=90)
    kept = slept["status"]["hibernation"]["checkpoint"]

    patch_spec(cluster, namespace, "dozy", {"desiredState": "deleted"})
    wait_phase(cluster, namespace, "dozy", "Deleted", timeout=60)
    ckpt = get(cluster, namespace, CHECKPOINT_PLURAL, kept)
    assert ckpt is not None and ckpt["status"]["readyToUse"] is True
    labels = ckpt["metadata"]["labels"]
    assert labels["aura.dev/final-checkpoint"] == "true"
    assert labels["aura.dev/retained-agent"] == "dozy"
    assert labels["aura.dev/stripe-customer"] == CUSTOMER
    assert "aura.dev/retain-until" in ckpt["metadata"]["annotations"]
    assert ckpt["spec"]["deletionPolicy"] == "Retain"
    assert ckpt["status"]["imageID"] in [i.id for i in images(sandbox)]
    # No second checkpoint was taken: the data was already in the hibernation one.
    assert (
        get(cluster, namespace, CHECKPOINT_PLURAL, final_name("dozy", agent["metadata"]["uid"]))
        is None
    )
    history = events(cluster, namespace, "dozy")
    told = [e["message"] for e in history if e["reason"] == "FinalCheckpoint"]
    assert told and kept in told[0]

    # The customer returns: the Agent comes back from the hibernation image with its data.
    cluster.kubectl("delete", "agent", "dozy", "-n", namespace, "--wait=true")
    source = {"checkpoint": kept}
    apply(cluster, agent_manifest("dozy", namespace, billing=billing, source=source))
    back = wait_phase(cluster, namespace, "dozy", "Running", timeout=90)
    assert read_file(sandbox, back["status"]["server"]["id"], MARKER) == b"asleep when cancelled"
