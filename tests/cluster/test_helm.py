"""The Helm chart (manifests/helm/aura): it renders the kustomize base, its values do what they
say, the API server accepts its objects, and `helm install` brings Aura up on the real node.

Helm is built from the Go module proxy and cached like the other binaries (`hack/cluster.sh
helm` prints its path).
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster.conftest import CLUSTER_SH, HostSandbox, Node, figure
from tests.cluster.test_deploy import agent, apply, servers_in, wait_running
from tests.kube import REPO, Cluster

# The session fixtures build the image and bring the node up inside the first test's setup:
# minutes on a cold machine, beyond the suite's default per-test timeout.
pytestmark = pytest.mark.timeout(3600)

CHART = REPO / "manifests" / "helm" / "aura"
HELM_LABELS = ("helm.sh/chart", "app.kubernetes.io/managed-by", "app.kubernetes.io/instance")
Obj = dict[str, Any]


@pytest.fixture(scope="session")
def helm() -> str:
    proc = subprocess.run(
        ["bash", str(CLUSTER_SH), "helm"], capture_output=True, text=True, timeout=3600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.strip().splitlines()[-1]


def run(*args: str, input: str | None = None) -> str:
    proc = subprocess.run(args, capture_output=True, text=True, input=input, timeout=600)
    assert proc.returncode == 0, f"{' '.join(args[:3])}... failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def template(helm: str, *values: str, namespace: str = "aura-system") -> list[Obj]:
    args = [helm, "template", "aura", str(CHART), "--namespace", namespace, "--include-crds"]
    for value in values:
        args += ["--set", value]
    return [o for o in yaml.safe_load_all(run(*args)) if o]


def key(obj: Obj) -> tuple[str, str, str, str]:
    meta = obj["metadata"]
    return (obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta["name"])


def without_helm_labels(obj: Obj) -> Obj:
    labels = obj["metadata"].get("labels") or {}
    for label in HELM_LABELS:
        labels.pop(label, None)
    return obj


def by_name(value: Any) -> Any:
    """`value` with every list of named objects sorted by name."""
    if isinstance(value, dict):
        return {k: by_name(v) for k, v in value.items()}
    if isinstance(value, list):
        items = [by_name(v) for v in value]
        if items and all(isinstance(v, dict) and "name" in v for v in items):
            return sorted(items, key=lambda v: v["name"])
        return items
    return value


def by_key(objects: list[Obj]) -> dict[tuple[str, str, str, str], Obj]:
    return {key(o): o for o in objects}


def test_helm_lint_passes_with_defaults_and_with_every_option(helm: str) -> None:
    run(helm, "lint", "--strict", str(CHART))
    run(
        helm,
        "lint",
        "--strict",
        str(CHART),
        "--set",
        "tailnet.sidecar.enabled=true,operator.watchNamespace=shard-a,credentials.existingSecret=mine",
        "--set",
        "operator.shards={b,c}",
    )


def test_default_render_is_the_kustomize_base_plus_helm_labels(helm: str) -> None:
    kustomized = by_key(
        [o for o in yaml.safe_load_all(run("kubectl", "kustomize", str(REPO / "manifests"))) if o]
    )
    rendered = template(helm, "namespace.create=true")
    for obj in rendered:
        labels = obj["metadata"].get("labels") or {}
        if obj["kind"] != "CustomResourceDefinition":
            assert labels.get("app.kubernetes.io/managed-by") == "Helm", key(obj)
    helmed = by_key([without_helm_labels(o) for o in rendered])
    assert sorted(helmed) == sorted(kustomized)
    for k, obj in kustomized.items():
        if obj["kind"] == "CustomResourceDefinition":
            # kustomize stamps its labels on the CRDs; Helm installs crds/ verbatim.
            for label in ("app.kubernetes.io/part-of", "app.kubernetes.io/version"):
                obj["metadata"]["labels"].pop(label, None)
            if not obj["metadata"]["labels"]:
                del obj["metadata"]["labels"]
        assert helmed[k] == obj, f"{k} differs"


def test_the_sidecar_component_and_the_sidecar_value_render_the_same(
    helm: str, tmp_path: Path
) -> None:
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    base = os.path.relpath(REPO / "manifests", overlay)
    component = os.path.relpath(REPO / "manifests" / "components" / "tailnet-sidecar", overlay)
    (overlay / "kustomization.yaml").write_text(
        yaml.safe_dump({"resources": [base], "components": [component]})
    )
    kustomized = by_key(
        [o for o in yaml.safe_load_all(run("kubectl", "kustomize", str(overlay))) if o]
    )
    helmed = by_key(
        [
            without_helm_labels(o)
            for o in template(helm, "namespace.create=true,tailnet.sidecar.enabled=true")
        ]
    )
    name = ("apps/v1", "Deployment", "aura-system", "aura-operator")
    # A strategic merge patch puts the entries it adds first; named entries (env, volumes,
    # containers) mean the same in any order.
    assert by_name(helmed[name]) == by_name(kustomized[name])
    containers = [c["name"] for c in helmed[name]["spec"]["template"]["spec"]["containers"]]
    assert containers == ["operator", "tailscale"]


def test_a_shard_value_renders_the_shard_overlay(helm: str) -> None:
    """`operator.shards: [b]` adds exactly what manifests/shards/b/ renders: shard b's own
    Deployment, PodDisruptionBudget and ClusterKopfPeering, serving aura.dev/shard=b."""
    overlay = REPO / "manifests" / "shards" / "b"
    kustomized = by_key(
        [o for o in yaml.safe_load_all(run("kubectl", "kustomize", str(overlay))) if o]
    )
    default = by_key(template(helm))
    added = {
        k: without_helm_labels(o)
        for k, o in by_key(template(helm, "operator.shards={b}")).items()
        if k not in default
    }
    assert sorted(added) == sorted(kustomized)
    for k, obj in kustomized.items():
        assert added[k] == obj, f"{k} differs"
    deployment = kustomized[("apps/v1", "Deployment", "aura-system", "aura-operator-b")]
    env = {
        e["name"]: e.get("value")
        for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["AURA_SHARD"] == "b" and env["AURA_PEERING"] == "aura-b"
    assert ("kopf.dev/v1", "ClusterKopfPeering", "", "aura-b") in kustomized
    # The default shard's objects are untouched by the value.
    assert by_key(template(helm, "operator.shards={b}")).keys() >= default.keys()


def test_values_set_image_replicas_resources_secrets_sharding_and_sidecar(helm: str) -> None:
    objects = by_key(
        template(
            helm,
            "image.tag=9.9.9,operator.replicas=3,bridge.replicas=1",
            "operator.resources.limits.memory=1Gi,operator.watchNamespace=shard-a",
            "credentials.existingSecret=my-creds,bridge.existingSecret=my-bridge",
            "tailnet.sidecar.enabled=true,tailnet.sidecar.proxyPort=2055",
            "peering.name=fleet-a",
        )
    )
    operator = objects[("apps/v1", "Deployment", "aura-system", "aura-operator")]
    bridge = objects[("apps/v1", "Deployment", "aura-system", "aura-bridge")]
    assert operator["spec"]["replicas"] == 3 and bridge["spec"]["replicas"] == 1
    pod = operator["spec"]["template"]["spec"]
    main, sidecar = pod["containers"]
    assert main["image"] == "ghcr.io/aura-dev/aura:9.9.9"
    assert main["resources"]["limits"]["memory"] == "1Gi"
    assert "--namespace=shard-a" in main["args"]
    env = {e["name"]: e for e in main["env"]}
    assert env["AURA_TAILNET_PROXY"]["value"] == "127.0.0.1:2055"
    assert env["AURA_PEERING"]["value"] == "fleet-a"
    assert env["HCLOUD_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "my-creds"
    assert ("kopf.dev/v1", "ClusterKopfPeering", "", "fleet-a") in objects
    # No Secret is rendered for credentials managed elsewhere.
    assert not [k for k in objects if k[1] == "Secret"]
    # The sidecar: userspace networking, no extra capability, no device, proxies on loopback.
    assert sidecar["name"] == "tailscale"
    side_env = {e["name"]: e.get("value") for e in sidecar["env"]}
    assert side_env["TS_USERSPACE"] == "true"
    assert (
        side_env["TS_SOCKS5_SERVER"]
        == side_env["TS_OUTBOUND_HTTP_PROXY_LISTEN"]
        == "127.0.0.1:2055"
    )
    assert sidecar["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert not any("hostPath" in v for v in pod["volumes"])
    authkey = next(e for e in sidecar["env"] if e["name"] == "TS_AUTHKEY")
    assert authkey["valueFrom"]["secretKeyRef"]["name"] == "aura-operator-tailnet"


def test_the_api_server_accepts_every_rendered_object(helm: str, cluster: Cluster) -> None:
    """`helm template | kubectl apply --dry-run=server` on the envtest apiserver."""
    cluster.kubectl("apply", "-f", str(REPO / "manifests" / "namespace.yaml"))
    rendered = template(helm, "tailnet.sidecar.enabled=true")
    docs = "\n---\n".join(
        yaml.safe_dump(o) for o in rendered if o["kind"] != "CustomResourceDefinition"
    )
    out = cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=docs)
    assert "deployment.apps/aura-operator created (server dry run)" in out


@pytest.fixture
def release(node: Node, host_sandbox: HostSandbox, helm: str) -> Iterator[tuple[str, float]]:
    """`helm install` on the real node, in a namespace of its own; uninstalled afterwards."""
    namespace = "aura-helm"
    info = host_sandbox.info
    node.kubectl("create", "namespace", namespace)
    values = {
        "credentials": {
            "values": {
                "HCLOUD_TOKEN": info["hetzner_token"],
                "HCLOUD_ENDPOINT": info["hetzner_url"],
                "TAILSCALE_OAUTH_CLIENT_ID": info["tailscale_client_id"],
                "TAILSCALE_OAUTH_CLIENT_SECRET": info["tailscale_client_secret"],
                "TAILSCALE_TAILNET": info["tailscale_tailnet"],
                "TAILSCALE_BASE_URL": info["tailscale_url"],
            }
        },
        "operator": {"extraEnv": [{"name": "AURA_SANDBOX_URL", "value": host_sandbox.admin_url}]},
        "bridge": {
            "values": {"STRIPE_WEBHOOK_SECRET": "whsec_" + uuid.uuid4().hex, "AURA_API_TOKENS": "t"}
        },
    }
    started = time.monotonic()
    install = [helm, "install", "aura", str(CHART), "--kubeconfig", node.kubeconfig]
    install += ["--namespace", namespace, "--values", "-", "--wait", "--timeout", "5m"]
    run(*install, input=yaml.safe_dump(values))
    yield namespace, time.monotonic() - started
    run(
        helm,
        "uninstall",
        "aura",
        "--kubeconfig",
        node.kubeconfig,
        "--namespace",
        namespace,
        "--wait",
    )


def test_helm_install_on_the_real_node_runs_aura(
    node: Node, host_sandbox: HostSandbox, release: tuple[str, float]
) -> None:
    namespace, took = release
    figure("helm install -> both Deployments available", f"{took:.0f}s")
    for deployment in ("aura-operator", "aura-bridge"):
        status = node.get_json("-n", namespace, "get", "deployment", deployment)["status"]
        assert status.get("availableReplicas") == 2, (deployment, status)
    agents = f"h-{uuid.uuid4().hex[:8]}"
    node.kubectl("create", "namespace", agents)
    apply(node, [agent("via-helm", agents)])
    wait_running(node, agents, "via-helm")
    assert len(servers_in(host_sandbox, agents)) == 1
