"""The Agent CRD on a real kube-apiserver: what it accepts, defaults, and rejects."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from aura.models import GROUP, PLURAL, VERSION
from tests.agent_cases import BAD_SPECS, valid_spec
from tests.kube import Cluster

pytestmark = pytest.mark.integration


def agent(name: str, spec: dict[str, Any] | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Agent",
        "metadata": {"name": name},
    }
    if spec is not None:
        body["spec"] = spec
    return body


def create(cluster: Cluster, ns: str, body: dict[str, Any], **kw: Any) -> dict[str, Any]:
    result: dict[str, Any] = cluster.custom.create_namespaced_custom_object(
        GROUP, VERSION, ns, PLURAL, body, **kw
    )
    return result


def patch_spec(cluster: Cluster, ns: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = cluster.custom.patch_namespaced_custom_object(
        GROUP, VERSION, ns, PLURAL, name, {"spec": spec}
    )
    return result


def rejection(exc: pytest.ExceptionInfo[ApiException]) -> str:
    assert exc.value.status == 422, exc.value.body
    return str(json.loads(exc.value.body)["message"])


def test_valid_agent_is_accepted_as_written(cluster: Cluster, namespace: str) -> None:
    created = create(cluster, namespace, agent("full", valid_spec()))
    assert created["spec"]["billing"]["subscriptionId"] == "sub_A1b2C3"
    assert created["spec"]["runtime"]["gatewayPort"] == 18789  # defaulted inside a given section


def test_empty_agent_gets_every_default(cluster: Cluster, namespace: str) -> None:
    created = create(cluster, namespace, agent("bare", None))
    assert created["spec"] == {
        "desiredState": "running",
        "server": {"type": "cx22", "location": "nbg1", "image": "ubuntu-24.04"},
        "runtime": {"openclawVersion": "2026.3.1", "gatewayPort": 18789, "settings": {}},
        "tailscale": {"tags": ["tag:aura-agent"]},
    }


@pytest.mark.parametrize(("spec", "field"), BAD_SPECS)
def test_bad_agent_is_rejected_naming_the_field(
    cluster: Cluster, namespace: str, spec: dict[str, Any], field: str
) -> None:
    with pytest.raises(ApiException) as exc:
        create(cluster, namespace, agent("bad", spec))
    assert f"spec.{field}" in rejection(exc)


def test_duplicate_tags_are_rejected(cluster: Cluster, namespace: str) -> None:
    spec = valid_spec()
    spec["tailscale"]["tags"] = ["tag:a", "tag:a"]
    with pytest.raises(ApiException) as exc:
        create(cluster, namespace, agent("dup", spec))
    assert "spec.tailscale.tags[1]: Duplicate value" in rejection(exc)


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("type", "cx32", "spec.server.type is immutable: create a new Agent"),
        ("location", "fsn1", "spec.server.location is immutable: create a new Agent"),
        ("image", "debian-12", "spec.server.image is immutable: create a new Agent"),
    ],
)
def test_server_is_immutable_after_creation(
    cluster: Cluster, namespace: str, field: str, value: str, words: str
) -> None:
    create(cluster, namespace, agent("fixed", valid_spec()))
    with pytest.raises(ApiException) as exc:
        patch_spec(cluster, namespace, "fixed", {"server": {field: value}})
    assert words in rejection(exc)


def test_a_deleted_agent_cannot_be_revived(cluster: Cluster, namespace: str) -> None:
    create(cluster, namespace, agent("gone", {**valid_spec(), "desiredState": "deleted"}))
    with pytest.raises(ApiException) as exc:
        patch_spec(cluster, namespace, "gone", {"desiredState": "running"})
    assert "create a new Agent instead of reviving it" in rejection(exc)


def test_other_desired_state_changes_are_allowed(cluster: Cluster, namespace: str) -> None:
    create(cluster, namespace, agent("flip", valid_spec()))
    for state in ("stopped", "suspended", "running", "deleted"):
        assert (
            patch_spec(cluster, namespace, "flip", {"desiredState": state})["spec"]["desiredState"]
            == state
        )


def test_unknown_field_is_rejected_in_strict_mode(cluster: Cluster, namespace: str) -> None:
    body = agent("strict", {**valid_spec(), "replicas": 3})
    with pytest.raises(ApiException) as exc:
        create(cluster, namespace, body, field_validation="Strict")
    assert exc.value.status == 400
    assert 'unknown field "spec.replicas"' in json.loads(exc.value.body)["message"]


def test_unknown_field_is_pruned_otherwise(cluster: Cluster, namespace: str) -> None:
    created = create(cluster, namespace, agent("lax", {**valid_spec(), "replicas": 3}))
    assert "replicas" not in created["spec"]


def test_status_is_a_subresource(cluster: Cluster, namespace: str) -> None:
    body = agent("st", valid_spec())
    body["status"] = {"phase": "Running"}
    created = create(cluster, namespace, body)
    assert "status" not in created
    cluster.custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, PLURAL, "st", {"status": {"phase": "Provisioning"}}
    )
    got = cluster.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "st")
    assert got["status"]["phase"] == "Provisioning"


def test_kubectl_shows_the_printer_columns(cluster: Cluster, namespace: str) -> None:
    create(cluster, namespace, agent("shown", valid_spec()))
    cluster.custom.patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        "shown",
        {
            "status": {
                "phase": "Running",
                "server": {"ipv4": "203.0.113.7"},
                "tailscale": {"ipv4": "100.64.0.9"},
            }
        },
    )
    out = cluster.kubectl("get", "agents", "-n", namespace)
    header, row = out.splitlines()[:2]
    assert header.split() == [
        "NAME", "PHASE", "DESIRED", "SERVER", "TYPE", "LOCATION", "PUBLIC", "IP", "TAILNET", "IP",
        "AGE",
    ]  # fmt: skip
    assert row.split()[:7] == [
        "shown", "Running", "running", "cx22", "nbg1", "203.0.113.7", "100.64.0.9",
    ]  # fmt: skip
    assert "shown" in cluster.kubectl("get", "ag", "-n", namespace)
    assert "shown" in cluster.kubectl("get", "aura", "-n", namespace)


def test_example_manifests_are_valid(cluster: Cluster, namespace: str) -> None:
    out = cluster.kubectl("apply", "-n", namespace, "--dry-run=server", "-f", "manifests/examples/")
    assert "created (server dry run)" in out
