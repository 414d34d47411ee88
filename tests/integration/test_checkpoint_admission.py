"""The AgentCheckpoint and AgentRestore CRDs, and the Agent's checkpoint fields, on a real
kube-apiserver: defaults, rejections naming the field, immutability, printer columns."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from aura.checkpoint_models import CHECKPOINT_PLURAL, RESTORE_PLURAL
from aura.models import GROUP, PLURAL, VERSION
from tests.kube import REPO, Cluster
from tests.operator.harness import wait_for

pytestmark = pytest.mark.integration


def obj(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": kind,
        "metadata": {"name": name},
        "spec": spec,
    }


def create(cluster: Cluster, ns: str, plural: str, body: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = cluster.custom.create_namespaced_custom_object(
        GROUP, VERSION, ns, plural, body
    )
    return result


def patch(cluster: Cluster, ns: str, plural: str, name: str, spec: dict[str, Any]) -> None:
    cluster.custom.patch_namespaced_custom_object(GROUP, VERSION, ns, plural, name, {"spec": spec})


def rejected(fn: Any, *args: Any) -> str:
    with pytest.raises(ApiException) as exc:
        fn(*args)
    assert exc.value.status == 422, exc.value.body
    return str(json.loads(exc.value.body)["message"])


def test_checkpoint_gets_its_defaults(cluster: Cluster, namespace: str) -> None:
    made = create(
        cluster, namespace, CHECKPOINT_PLURAL, obj("AgentCheckpoint", "c1", {"agentName": "a"})
    )
    assert made["spec"] == {"agentName": "a", "mode": "consistent", "deletionPolicy": "Delete"}


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({}, "spec.agentName"),
        ({"agentName": "Not_A_Name"}, "spec.agentName"),
        ({"agentName": "a", "mode": "frozen"}, "spec.mode"),
        ({"agentName": "a", "deletionPolicy": "delete"}, "spec.deletionPolicy"),
        ({"agentName": "a", "failureDeadline": "5 minutes"}, "spec.failureDeadline"),
    ],
)
def test_bad_checkpoint_is_rejected_naming_the_field(
    cluster: Cluster, namespace: str, spec: dict[str, Any], field: str
) -> None:
    body = obj("AgentCheckpoint", "bad", spec)
    assert field in rejected(create, cluster, namespace, CHECKPOINT_PLURAL, body)


def test_checkpoint_source_is_immutable_but_policy_is_not(cluster: Cluster, namespace: str) -> None:
    create(cluster, namespace, CHECKPOINT_PLURAL, obj("AgentCheckpoint", "c2", {"agentName": "a"}))
    message = rejected(patch, cluster, namespace, CHECKPOINT_PLURAL, "c2", {"agentName": "b"})
    assert "spec.agentName is immutable" in message
    patch(cluster, namespace, CHECKPOINT_PLURAL, "c2", {"deletionPolicy": "Retain"})


def test_checkpoint_printer_columns(cluster: Cluster, namespace: str) -> None:
    create(cluster, namespace, CHECKPOINT_PLURAL, obj("AgentCheckpoint", "c3", {"agentName": "a"}))
    cluster.custom.patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        namespace,
        CHECKPOINT_PLURAL,
        "c3",
        {"status": {"phase": "Succeeded", "readyToUse": True, "sizeGB": 1.25}},
    )
    header, row = cluster.kubectl("get", "ackpt", "-n", namespace).splitlines()[:2]
    assert header.split() == ["NAME", "AGENT", "PHASE", "READY", "SIZE", "GB", "AGE", "ERROR"]
    assert row.split()[:5] == ["c3", "a", "Succeeded", "true", "1.25"]


def test_restore_defaults_and_immutability(cluster: Cluster, namespace: str) -> None:
    made = create(
        cluster,
        namespace,
        RESTORE_PLURAL,
        obj("AgentRestore", "r1", {"agentName": "a", "checkpointName": "c"}),
    )
    assert made["spec"]["targetReadinessPolicy"] == "WaitGracePeriod"
    assert made["spec"]["gracePeriod"] == "5m"
    message = rejected(patch, cluster, namespace, RESTORE_PLURAL, "r1", {"checkpointName": "d"})
    assert "spec is immutable: create a new restore" in message
    body = obj(
        "AgentRestore",
        "r2",
        {"agentName": "a", "checkpointName": "c", "targetReadinessPolicy": "Whenever"},
    )
    assert "spec.targetReadinessPolicy" in rejected(
        create, cluster, namespace, RESTORE_PLURAL, body
    )


def test_agent_schedule_needs_a_retention(cluster: Cluster, namespace: str) -> None:
    body = obj("Agent", "s1", {"checkpoints": {"schedule": "0 3 * * *"}})
    message = rejected(create, cluster, namespace, PLURAL, body)
    assert "spec.checkpoints needs keep and/or keepFor" in message
    body = obj("Agent", "s2", {"checkpoints": {"schedule": "every day", "keep": 2}})
    assert "spec.checkpoints.schedule" in rejected(create, cluster, namespace, PLURAL, body)
    body = obj("Agent", "s3", {"checkpoints": {"schedule": "@daily", "keep": 2, "keepFor": "7d"}})
    made = create(cluster, namespace, PLURAL, body)
    assert made["spec"]["checkpoints"]["deletionPolicy"] == "Delete"


def test_agent_source_is_set_at_creation_only(cluster: Cluster, namespace: str) -> None:
    create(cluster, namespace, PLURAL, obj("Agent", "plain", {}))
    message = rejected(patch, cluster, namespace, PLURAL, "plain", {"source": {"checkpoint": "c"}})
    assert "spec.source is set when the Agent is created, never later" in message
    create(cluster, namespace, PLURAL, obj("Agent", "clone", {"source": {"checkpoint": "c"}}))
    message = rejected(patch, cluster, namespace, PLURAL, "clone", {"source": {"checkpoint": "d"}})
    assert "spec.source is immutable" in message


def test_a_clone_on_a_smaller_disk_is_refused_at_admission(
    cluster: Cluster, namespace: str
) -> None:
    cluster.kubectl("apply", "-f", str(REPO / "manifests" / "admission-policy.yaml"))
    create(cluster, namespace, CHECKPOINT_PLURAL, obj("AgentCheckpoint", "big", {"agentName": "a"}))
    cluster.custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, CHECKPOINT_PLURAL, "big",
        {"status": {"phase": "Succeeded", "readyToUse": True, "diskSizeGB": 80}},
    )  # fmt: skip
    small = obj("Agent", "small", {"source": {"checkpoint": "big"}, "server": {"type": "cx22"}})

    def refused() -> str | None:
        try:
            create(cluster, namespace, PLURAL, small)
        except ApiException as exc:
            return str(json.loads(exc.body)["message"])
        cluster.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "small")
        return None  # the policy is not in force yet

    message = wait_for(refused, 30, what="the policy to refuse a cx22 clone")
    assert "spec.server.type: cx22 has a 40 GB disk, smaller than the 80 GB disk" in message
    assert "choose a server type with at least that much disk" in message
    same = obj("Agent", "same", {"source": {"checkpoint": "big"}, "server": {"type": "cx32"}})
    create(cluster, namespace, PLURAL, same)
    plain = obj("Agent", "plain-cx22", {"server": {"type": "cx22"}})
    create(cluster, namespace, PLURAL, plain)
