"""The shard label (controller/shards.py) is set when an Agent is created and never changed:
the ValidatingAdmissionPolicy `aura-shard-immutable` (manifests/admission-policy.yaml) on a
real kube-apiserver refuses adding, changing or removing it, and lets every other update by."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from aura.checkpoint_models import CHECKPOINT_PLURAL
from aura.controller.shards import SHARD_LABEL
from aura.models import GROUP, PLURAL, VERSION
from tests.kube import REPO, Cluster
from tests.operator.harness import wait_for

pytestmark = pytest.mark.integration


def _agent(name: str, shard: str | None) -> dict[str, Any]:
    labels = {SHARD_LABEL: shard} if shard else {}
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Agent",
        "metadata": {"name": name, "labels": labels},
        "spec": {"desiredState": "stopped"},
    }


def _relabel(cluster: Cluster, ns: str, plural: str, name: str, value: str | None) -> str | None:
    """Set (or with None remove) the shard label; the apiserver's refusal, or None."""
    body = {"metadata": {"labels": {SHARD_LABEL: value}}}
    try:
        cluster.custom.patch_namespaced_custom_object(GROUP, VERSION, ns, plural, name, body)
    except ApiException as exc:
        return f"{exc.status}: {json.loads(exc.body)['message']}"
    return None


def test_the_shard_label_cannot_be_added_changed_or_removed(
    cluster: Cluster, namespace: str
) -> None:
    cluster.kubectl("apply", "-f", str(REPO / "manifests" / "admission-policy.yaml"))
    create = cluster.custom.create_namespaced_custom_object
    create(GROUP, VERSION, namespace, PLURAL, _agent("in-b", "b"))
    create(GROUP, VERSION, namespace, PLURAL, _agent("unlabelled", None))

    def refused() -> str | None:  # the policy takes a moment to be in force
        message = _relabel(cluster, namespace, PLURAL, "in-b", "c")
        if message is None:
            _relabel(cluster, namespace, PLURAL, "in-b", "b")
        return message

    message = wait_for(refused, 30, what="the policy to refuse a shard change")
    assert message.startswith("422: ")  # Invalid, naming the field
    assert 'metadata.labels[aura.dev/shard] is immutable (was "b", now "c")' in message
    assert "create a new one in the other shard" in message
    removed = _relabel(cluster, namespace, PLURAL, "in-b", None)
    assert removed is not None and '(was "b", now unset)' in removed
    added = _relabel(cluster, namespace, PLURAL, "unlabelled", "b")
    assert added is not None and '(was unset, now "b")' in added

    # Everything else still updates: the spec, other labels, the same shard value again.
    update = {
        "metadata": {"labels": {"team": "x", SHARD_LABEL: "b"}},
        "spec": {"desiredState": "suspended"},
    }
    cluster.custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "in-b", update)
    agent = cluster.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "in-b")
    assert agent["metadata"]["labels"] == {SHARD_LABEL: "b", "team": "x"}

    # Checkpoints follow their Agent's shard, under the same rule.
    checkpoint = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "AgentCheckpoint",
        "metadata": {"name": "cp", "labels": {SHARD_LABEL: "b"}},
        "spec": {"agentName": "in-b"},
    }
    create(GROUP, VERSION, namespace, CHECKPOINT_PLURAL, checkpoint)
    assert _relabel(cluster, namespace, CHECKPOINT_PLURAL, "cp", "c") is not None
