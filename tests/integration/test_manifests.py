"""manifests/ on a real kube-apiserver: the kustomization applies, RBAC grants exactly what each
component needs, and the Deployments carry what the conventions promise.

The namespace and the RBAC objects are applied for real (idempotent, shared by the session);
everything else only with `--dry-run=server`, so no other test sees an Aura Deployment. The
peering test runs real kopf as the operator's service account, with uniquely named peering
objects (deleted afterwards) and Agents in its own namespace only.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import kopf
import pytest
import yaml

from tests.kube import REPO, Cluster

pytestmark = pytest.mark.integration

MANIFESTS = REPO / "manifests"
CRDS = REPO / "crds"
SYSTEM_NS = "aura-system"
IMAGE = "ghcr.io/aura-dev/aura:0.1.0"
OPERATOR = f"system:serviceaccount:{SYSTEM_NS}:aura-operator"
BRIDGE = f"system:serviceaccount:{SYSTEM_NS}:aura-bridge"
# A service account nothing is bound to: what every authenticated identity may do anyway.
NOBODY = f"system:serviceaccount:{SYSTEM_NS}:aura-test-nobody"
CUSTOMER_NS = "some-customer"  # permission checks need no real namespace

Obj = dict[str, Any]


def kubectl(
    cluster: Cluster, *args: str, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """kubectl with stdout *and* stderr kept (warnings matter here); never raises."""
    return subprocess.run(
        ["kubectl", "--kubeconfig", cluster.kubeconfig, *args],
        input=input,
        capture_output=True,
        text=True,
        timeout=120,
    )


def kustomize(path: Path) -> list[Obj]:
    proc = subprocess.run(
        ["kubectl", "kustomize", str(path)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


def by_kind(objs: list[Obj], kind: str) -> dict[str, Obj]:
    return {o["metadata"]["name"]: o for o in objs if o["kind"] == kind}


@pytest.fixture(scope="module")
def rbac_installed(cluster: Cluster) -> Cluster:
    """The namespace and both components' RBAC, applied for real (idempotent)."""
    files = ["namespace.yaml", "operator-rbac.yaml", "bridge-rbac.yaml"]
    args = [a for f in files for a in ("-f", str(MANIFESTS / f))]
    proc = kubectl(cluster, "apply", *args)
    assert proc.returncode == 0, proc.stderr
    return cluster


@pytest.fixture(scope="module")
def rendered() -> list[Obj]:
    return kustomize(MANIFESTS)


# -- the kustomization on the apiserver ------------------------------------------------------


def test_kustomization_applies_with_server_dry_run(rbac_installed: Cluster) -> None:
    proc = kubectl(rbac_installed, "apply", "-k", str(MANIFESTS), "--dry-run=server")
    assert proc.returncode == 0, proc.stderr
    for obj in (
        "deployment.apps/aura-operator",
        "deployment.apps/aura-bridge",
        "service/aura-bridge",
        "secret/aura-operator-credentials",
        "secret/aura-bridge-secrets",
        "clusterkopfpeering.kopf.dev/aura",
        "customresourcedefinition.apiextensions.k8s.io/agents.aura.dev",
        "customresourcedefinition.apiextensions.k8s.io/agentcheckpoints.aura.dev",
        "customresourcedefinition.apiextensions.k8s.io/agentrestores.aura.dev",
    ):
        assert f"{obj} " in proc.stdout, proc.stdout
    # aura-system enforces the `restricted` Pod Security profile; the apiserver warns on any
    # Deployment whose pods would be rejected (the next test shows that it does).
    assert "PodSecurity" not in proc.stderr, proc.stderr


def test_pod_security_violations_would_be_reported(rbac_installed: Cluster) -> None:
    """The control for the check above: a root-allowed operator draws the warning."""
    text = (MANIFESTS / "operator.yaml").read_text()
    assert "runAsNonRoot: true" in text
    bad = text.replace("runAsNonRoot: true", "runAsNonRoot: false")
    proc = kubectl(rbac_installed, "apply", "--dry-run=server", "-f", "-", input=bad)
    assert proc.returncode == 0, proc.stderr
    assert 'would violate PodSecurity "restricted:latest"' in proc.stderr


def test_crds_directory_applies_both_as_files_and_as_kustomization(cluster: Cluster) -> None:
    """`kubectl apply -f crds/` (README, tests/kube.py) must keep working next to `-k crds/`."""
    for mode in ("-f", "-k"):
        proc = kubectl(cluster, "apply", "--server-side", "--dry-run=server", mode, str(CRDS))
        assert proc.returncode == 0, f"{mode}: {proc.stderr}"
        assert "kopfpeerings.kopf.dev" in proc.stdout


def test_peering_crds_keep_kopf_keepalive_records(cluster: Cluster, namespace: str) -> None:
    """kopf writes `status.<operator-id>`; a schema that pruned it would break peering."""
    name = f"t-manifests-{uuid.uuid4().hex[:6]}"
    record = {"priority": 7, "lastseen": "2026-01-01T00:00:00", "lifetime": 60}
    objs = [
        ("clusterkopfpeering", ["apiVersion: kopf.dev/v1", "kind: ClusterKopfPeering"], []),
        ("kopfpeering", ["apiVersion: kopf.dev/v1", "kind: KopfPeering"], ["-n", namespace]),
    ]
    for resource, header, ns in objs:
        body = "\n".join([*header, f"metadata: {{name: {name}}}"])
        created = kubectl(cluster, "create", *ns, "-f", "-", input=body)
        assert created.returncode == 0, created.stderr
        try:
            patch = json.dumps({"status": {"op-1": record}})
            patched = kubectl(
                cluster, "patch", resource, name, *ns, "--as", OPERATOR,
                "--type=merge", "-p", patch, "-o", "json",
            )  # fmt: skip
            assert patched.returncode == 0, patched.stderr
            assert json.loads(patched.stdout)["status"]["op-1"] == record
        finally:
            kubectl(cluster, "delete", resource, name, *ns, "--wait=false")


# -- RBAC: what each service account may and may not do ------------------------------------

# (service account, verb, resource, scope, allowed). Scope: a namespace, "-A" for all
# namespaces at once, or "" for cluster-scoped resources.
PERMISSIONS: list[tuple[str, str, str, str, bool]] = [
    # operator: Agents and their status
    (OPERATOR, "get", "agents.aura.dev", CUSTOMER_NS, True),
    (OPERATOR, "list", "agents.aura.dev", "-A", True),
    (OPERATOR, "watch", "agents.aura.dev", "-A", True),
    (OPERATOR, "patch", "agents.aura.dev", CUSTOMER_NS, True),
    (OPERATOR, "patch", "agents.aura.dev/status", CUSTOMER_NS, True),
    (OPERATOR, "create", "agents.aura.dev", CUSTOMER_NS, False),
    (OPERATOR, "update", "agents.aura.dev", CUSTOMER_NS, False),
    (OPERATOR, "delete", "agents.aura.dev", CUSTOMER_NS, False),
    (OPERATOR, "deletecollection", "agents.aura.dev", CUSTOMER_NS, False),
    (OPERATOR, "update", "agents.aura.dev/status", CUSTOMER_NS, False),
    # operator: checkpoints (schedule creates and prunes) and restores
    (OPERATOR, "create", "agentcheckpoints.aura.dev", CUSTOMER_NS, True),
    (OPERATOR, "delete", "agentcheckpoints.aura.dev", CUSTOMER_NS, True),
    (OPERATOR, "patch", "agentcheckpoints.aura.dev/status", CUSTOMER_NS, True),
    (OPERATOR, "watch", "agentrestores.aura.dev", "-A", True),
    (OPERATOR, "patch", "agentrestores.aura.dev/status", CUSTOMER_NS, True),
    (OPERATOR, "create", "agentrestores.aura.dev", CUSTOMER_NS, False),
    (OPERATOR, "delete", "agentrestores.aura.dev", CUSTOMER_NS, False),
    # operator: Secrets by name only
    (OPERATOR, "get", "secrets", CUSTOMER_NS, True),
    (OPERATOR, "create", "secrets", CUSTOMER_NS, True),
    (OPERATOR, "patch", "secrets", CUSTOMER_NS, True),
    (OPERATOR, "delete", "secrets", CUSTOMER_NS, True),
    (OPERATOR, "list", "secrets", CUSTOMER_NS, False),
    (OPERATOR, "list", "secrets", "-A", False),
    (OPERATOR, "watch", "secrets", "-A", False),
    (OPERATOR, "update", "secrets", CUSTOMER_NS, False),
    (OPERATOR, "deletecollection", "secrets", CUSTOMER_NS, False),
    # operator: Events, create only
    (OPERATOR, "create", "events", CUSTOMER_NS, True),
    (OPERATOR, "create", "events.events.k8s.io", CUSTOMER_NS, True),
    (OPERATOR, "list", "events", CUSTOMER_NS, False),
    (OPERATOR, "delete", "events", CUSTOMER_NS, False),
    # operator: kopf itself
    (OPERATOR, "get", "clusterkopfpeerings.kopf.dev", "", True),
    (OPERATOR, "list", "clusterkopfpeerings.kopf.dev", "", True),
    (OPERATOR, "watch", "clusterkopfpeerings.kopf.dev", "", True),
    (OPERATOR, "patch", "clusterkopfpeerings.kopf.dev", "", True),
    (OPERATOR, "create", "clusterkopfpeerings.kopf.dev", "", False),
    (OPERATOR, "delete", "clusterkopfpeerings.kopf.dev", "", False),
    (OPERATOR, "patch", "kopfpeerings.kopf.dev", CUSTOMER_NS, True),
    (OPERATOR, "watch", "kopfpeerings.kopf.dev", CUSTOMER_NS, True),
    (OPERATOR, "list", "customresourcedefinitions.apiextensions.k8s.io", "", True),
    (OPERATOR, "watch", "customresourcedefinitions.apiextensions.k8s.io", "", True),
    (OPERATOR, "patch", "customresourcedefinitions.apiextensions.k8s.io", "", False),
    (OPERATOR, "delete", "customresourcedefinitions.apiextensions.k8s.io", "", False),
    (OPERATOR, "list", "namespaces", "", True),
    (OPERATOR, "watch", "namespaces", "", True),
    (OPERATOR, "create", "namespaces", "", False),
    (OPERATOR, "delete", "namespaces", "", False),
    # operator: nothing of the cluster's workloads or access control
    (OPERATOR, "create", "deployments.apps", CUSTOMER_NS, False),
    (OPERATOR, "patch", "deployments.apps", SYSTEM_NS, False),
    (OPERATOR, "list", "pods", CUSTOMER_NS, False),
    (OPERATOR, "create", "pods", CUSTOMER_NS, False),
    (OPERATOR, "create", "pods/exec", CUSTOMER_NS, False),
    (OPERATOR, "get", "configmaps", CUSTOMER_NS, False),
    (OPERATOR, "create", "configmaps", CUSTOMER_NS, False),
    (OPERATOR, "get", "nodes", "", False),
    (OPERATOR, "create", "serviceaccounts/token", SYSTEM_NS, False),
    (OPERATOR, "create", "rolebindings.rbac.authorization.k8s.io", CUSTOMER_NS, False),
    (OPERATOR, "escalate", "clusterroles.rbac.authorization.k8s.io", "", False),
    (OPERATOR, "impersonate", "serviceaccounts", SYSTEM_NS, False),
    # bridge: Agents without status or deletion
    (BRIDGE, "get", "agents.aura.dev", CUSTOMER_NS, True),
    (BRIDGE, "list", "agents.aura.dev", "-A", True),
    (BRIDGE, "watch", "agents.aura.dev", "-A", True),
    (BRIDGE, "create", "agents.aura.dev", CUSTOMER_NS, True),
    (BRIDGE, "patch", "agents.aura.dev", CUSTOMER_NS, True),
    (BRIDGE, "update", "agents.aura.dev", CUSTOMER_NS, False),
    (BRIDGE, "delete", "agents.aura.dev", CUSTOMER_NS, False),
    (BRIDGE, "deletecollection", "agents.aura.dev", CUSTOMER_NS, False),
    (BRIDGE, "patch", "agents.aura.dev/status", CUSTOMER_NS, False),
    (BRIDGE, "get", "agents.aura.dev/status", CUSTOMER_NS, False),
    (BRIDGE, "create", "events", CUSTOMER_NS, True),
    (BRIDGE, "create", "events.events.k8s.io", CUSTOMER_NS, True),
    (BRIDGE, "list", "events", CUSTOMER_NS, False),
    # bridge: no Secrets at all, nothing else
    (BRIDGE, "get", "secrets", SYSTEM_NS, False),
    (BRIDGE, "get", "secrets", CUSTOMER_NS, False),
    (BRIDGE, "list", "secrets", "-A", False),
    (BRIDGE, "create", "secrets", CUSTOMER_NS, False),
    (BRIDGE, "list", "configmaps", CUSTOMER_NS, False),
    (BRIDGE, "list", "pods", CUSTOMER_NS, False),
    (BRIDGE, "list", "namespaces", "", False),
    (BRIDGE, "list", "customresourcedefinitions.apiextensions.k8s.io", "", False),
    (BRIDGE, "patch", "clusterkopfpeerings.kopf.dev", "", False),
    (BRIDGE, "create", "deployments.apps", CUSTOMER_NS, False),
]


def can_i(cluster: Cluster, who: str, verb: str, resource: str, scope: str) -> bool:
    resource, _, subresource = resource.partition("/")
    args = ["auth", "can-i", verb, resource, f"--as={who}"]
    if subresource:
        args.append(f"--subresource={subresource}")
    if scope == "-A":
        args.append("--all-namespaces")
    elif scope:
        args += ["-n", scope]
    proc = kubectl(cluster, *args)
    answer = proc.stdout.strip()
    assert answer in {"yes", "no"}, f"kubectl {' '.join(args)}: {proc.stdout}{proc.stderr}"
    return answer == "yes"


@pytest.mark.parametrize(
    ("who", "verb", "resource", "scope", "allowed"),
    PERMISSIONS,
    ids=[f"{w.rsplit(':', 1)[1]}-{v}-{r}-{s or 'cluster'}-{a}" for w, v, r, s, a in PERMISSIONS],
)
def test_service_account_can_or_cannot(
    rbac_installed: Cluster, who: str, verb: str, resource: str, scope: str, allowed: bool
) -> None:
    assert can_i(rbac_installed, who, verb, resource, scope) is allowed


# The complete grant of each service account, beyond what any authenticated identity has:
# (API group, resource, verb). A rule added to the manifests without a reason fails here.
EXPECTED_GRANTS: dict[str, set[tuple[str, str, str]]] = {
    OPERATOR: {
        *{("aura.dev", "agents", v) for v in ("get", "list", "watch", "patch")},
        *{("aura.dev", "agents/status", v) for v in ("get", "patch")},
        *{
            ("aura.dev", "agentcheckpoints", v)
            for v in ("get", "list", "watch", "patch", "create", "delete")
        },
        *{("aura.dev", "agentrestores", v) for v in ("get", "list", "watch", "patch")},
        *{
            ("aura.dev", r, v)
            for r in ("agentcheckpoints/status", "agentrestores/status")
            for v in ("get", "patch")
        },
        *{("", "secrets", v) for v in ("get", "create", "patch", "delete")},
        ("", "events", "create"),
        ("events.k8s.io", "events", "create"),
        *{("kopf.dev", "kopfpeerings", v) for v in ("get", "list", "watch", "patch")},
        *{("kopf.dev", "clusterkopfpeerings", v) for v in ("get", "list", "watch", "patch")},
        *{
            ("apiextensions.k8s.io", "customresourcedefinitions", v)
            for v in ("get", "list", "watch")
        },
        *{("", "namespaces", v) for v in ("list", "watch")},
    },
    BRIDGE: {
        *{("aura.dev", "agents", v) for v in ("get", "list", "watch", "create", "patch")},
        ("", "events", "create"),
        ("events.k8s.io", "events", "create"),
    },
}


def granted(cluster: Cluster, who: str, namespace: str) -> tuple[set[tuple[str, ...]], Obj]:
    """Every (group, resource, verb) `who` may use in `namespace`, as the apiserver says."""
    review = json.dumps(
        {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectRulesReview",
            "spec": {"namespace": namespace},
        }
    )
    proc = kubectl(
        cluster, "create", "--validate=false", f"--as={who}", "-o", "json", "-f", "-", input=review
    )
    assert proc.returncode == 0, proc.stderr
    status: Obj = json.loads(proc.stdout)["status"]
    assert not status.get("incomplete"), status
    rules = set()
    for rule in status["resourceRules"]:
        assert not rule.get("resourceNames"), rule
        for group in rule.get("apiGroups", []):
            for resource in rule.get("resources", []):
                rules.update((group, resource, verb) for verb in rule["verbs"])
    return rules, status


def non_resource(status: Obj) -> set[tuple[str, str]]:
    return {
        (url, verb)
        for rule in status["nonResourceRules"]
        for url in rule["nonResourceURLs"]
        for verb in rule["verbs"]
    }


@pytest.mark.parametrize("who", [OPERATOR, BRIDGE], ids=["operator", "bridge"])
def test_service_account_has_nothing_more(rbac_installed: Cluster, who: str) -> None:
    baseline, base_status = granted(rbac_installed, NOBODY, CUSTOMER_NS)
    rules, status = granted(rbac_installed, who, CUSTOMER_NS)
    assert rules - baseline == EXPECTED_GRANTS[who]
    assert not any("*" in part for rule in rules for part in rule)
    assert non_resource(status) == non_resource(base_status)


# -- what the rendered objects promise ----------------------------------------------------


def test_kustomization_holds_exactly_the_deployment(rendered: list[Obj]) -> None:
    names = {(o["kind"], o["metadata"]["name"]) for o in rendered}
    assert names == {
        ("Namespace", SYSTEM_NS),
        ("CustomResourceDefinition", "agents.aura.dev"),
        ("CustomResourceDefinition", "agentcheckpoints.aura.dev"),
        ("CustomResourceDefinition", "agentrestores.aura.dev"),
        ("CustomResourceDefinition", "clusterkopfpeerings.kopf.dev"),
        ("CustomResourceDefinition", "kopfpeerings.kopf.dev"),
        ("ClusterKopfPeering", "aura"),
        ("ValidatingAdmissionPolicy", "aura-agent-source-disk"),
        ("ValidatingAdmissionPolicyBinding", "aura-agent-source-disk"),
        ("ServiceAccount", "aura-operator"),
        ("ServiceAccount", "aura-bridge"),
        ("ClusterRole", "aura-operator"),
        ("ClusterRole", "aura-operator-cluster"),
        ("ClusterRole", "aura-bridge"),
        ("ClusterRoleBinding", "aura-operator"),
        ("ClusterRoleBinding", "aura-operator-cluster"),
        ("ClusterRoleBinding", "aura-bridge"),
        ("Secret", "aura-operator-credentials"),
        ("Secret", "aura-bridge-secrets"),
        ("Deployment", "aura-operator"),
        ("Deployment", "aura-bridge"),
        ("Service", "aura-bridge"),
        ("PodDisruptionBudget", "aura-operator"),
        ("PodDisruptionBudget", "aura-bridge"),
    }
    cluster_scoped = {"Namespace", "CustomResourceDefinition", "ClusterKopfPeering"}
    cluster_scoped |= {"ClusterRole", "ClusterRoleBinding"}
    cluster_scoped |= {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}
    for obj in rendered:
        expected_ns = None if obj["kind"] in cluster_scoped else SYSTEM_NS
        assert obj["metadata"].get("namespace") == expected_ns, obj["metadata"]
    assert not [o for o in rendered if o["kind"] == "Agent"], "examples/ are not deployed"


def test_crds_come_from_the_one_source(rendered: list[Obj]) -> None:
    """manifests/ includes ../crds; no copy of a CRD drifts away from crds/."""
    files = {p.name for p in CRDS.glob("*.yaml")}
    listed = yaml.safe_load((CRDS / "Kustomization").read_text())["resources"]
    assert set(listed) == files, "every CRD file in crds/ is listed in crds/Kustomization"
    assert not (CRDS / "kustomization.yaml").exists(), "it would break `kubectl apply -f crds/`"
    on_disk = {
        d["metadata"]["name"]: d["spec"]
        for f in files
        for d in yaml.safe_load_all((CRDS / f).read_text())
        if d
    }
    assert {n: c["spec"] for n, c in by_kind(rendered, "CustomResourceDefinition").items()} == (
        on_disk
    )


def containers(deployment: Obj) -> list[Obj]:
    result: list[Obj] = deployment["spec"]["template"]["spec"]["containers"]
    return result


@pytest.mark.parametrize("name", ["aura-operator", "aura-bridge"])
def test_deployment_is_hardened_probed_and_sized(rendered: list[Obj], name: str) -> None:
    deployment = by_kind(rendered, "Deployment")[name]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] in by_kind(rendered, "ServiceAccount")
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] > 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    volumes = {v["name"]: v for v in pod["volumes"]}
    (container,) = containers(deployment)
    assert container["image"] == IMAGE
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["port"] in ports, probe
    assert {"cpu", "memory"} <= container["resources"]["requests"].keys()
    assert "memory" in container["resources"]["limits"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    tmp = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
    assert tmp and "emptyDir" in volumes[tmp[0]["name"]], "a writable /tmp"
    (pdb,) = [
        p
        for p in by_kind(rendered, "PodDisruptionBudget").values()
        if p["metadata"]["name"] == name
    ]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_operator_runs_two_peered_replicas_with_distinct_priorities(rendered: list[Obj]) -> None:
    deployment = by_kind(rendered, "Deployment")["aura-operator"]
    assert deployment["spec"]["replicas"] == 2
    (container,) = containers(deployment)
    assert container["args"][0] == "operator"
    assert "--liveness=http://0.0.0.0:8080/healthz" in container["args"]
    env = {e["name"]: e for e in container["env"]}
    # The peering the replicas meet in exists under exactly that name.
    assert env["AURA_PEERING"]["value"] in by_kind(rendered, "ClusterKopfPeering")
    # The pod name, unique per replica, is what the operator derives its priority from.
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    # kopf names each peer by POD_ID, so the peering records say which pod is which.
    assert env["POD_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"health": 8080, "metrics": 9090}
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    requests = container["resources"]["requests"]
    assert (requests["cpu"], requests["memory"]) == ("100m", "256Mi")
    assert container["resources"]["limits"]["memory"] == "512Mi"


def test_bridge_listens_where_its_service_and_probes_point(rendered: list[Obj]) -> None:
    deployment = by_kind(rendered, "Deployment")["aura-bridge"]
    (container,) = containers(deployment)
    assert container["args"] == ["bridge", "--host", "0.0.0.0", "--port", "8080"]
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"http": 8080}
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    service = by_kind(rendered, "Service")["aura-bridge"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http"]
    requests = container["resources"]["requests"]
    assert (requests["cpu"], requests["memory"]) == ("50m", "128Mi")


SECRET_KEYS = {
    "aura-operator": (
        "aura-operator-credentials",
        {
            "HCLOUD_TOKEN",
            "HCLOUD_ENDPOINT",
            "TAILSCALE_OAUTH_CLIENT_ID",
            "TAILSCALE_OAUTH_CLIENT_SECRET",
            "TAILSCALE_TAILNET",
            "TAILSCALE_BASE_URL",
        },
    ),
    "aura-bridge": (
        "aura-bridge-secrets",
        {"STRIPE_WEBHOOK_SECRET", "STRIPE_API_KEY", "AURA_API_TOKENS"},
    ),
}


@pytest.mark.parametrize("name", sorted(SECRET_KEYS))
def test_every_secret_key_is_consumed_as_the_env_of_its_name(
    rendered: list[Obj], name: str
) -> None:
    secret_name, keys = SECRET_KEYS[name]
    secret = by_kind(rendered, "Secret")[secret_name]
    assert set(secret["stringData"]) == keys
    (container,) = containers(by_kind(rendered, "Deployment")[name])
    from_secrets = {
        e["name"]: e["valueFrom"]["secretKeyRef"]
        for e in container["env"]
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    assert set(from_secrets) == keys
    for env_name, ref in from_secrets.items():
        assert (ref["name"], ref["key"]) == (secret_name, env_name)


def test_example_secrets_hold_only_placeholders(rendered: list[Obj]) -> None:
    for secret in by_kind(rendered, "Secret").values():
        for key, value in secret["stringData"].items():
            secretish = any(word in key for word in ("TOKEN", "SECRET", "KEY", "CLIENT_ID"))
            assert not secretish or "replace-me" in value, (key, value)


def test_an_overlay_replaces_the_placeholder_secrets(tmp_path: Path) -> None:
    """The README's overlay recipe: real values from untracked env files, base untouched."""
    (tmp_path / "operator.env").write_text("HCLOUD_TOKEN=real-token\nTAILSCALE_TAILNET=-\n")
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                # kustomize refuses absolute paths; a relative one may leave the overlay's root
                "resources": [os.path.relpath(MANIFESTS, tmp_path)],
                "secretGenerator": [
                    {
                        "name": "aura-operator-credentials",
                        "namespace": SYSTEM_NS,
                        "behavior": "replace",
                        "envs": ["operator.env"],
                    }
                ],
                "generatorOptions": {"disableNameSuffixHash": True},
            }
        )
    )
    secret = by_kind(kustomize(tmp_path), "Secret")["aura-operator-credentials"]
    assert "stringData" not in secret
    assert set(secret["data"]) == {"HCLOUD_TOKEN", "TAILSCALE_TAILNET"}


# -- sample Agents ------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted((MANIFESTS / "examples").glob("*.yaml")), ids=str)
def test_example_agents_are_accepted(cluster: Cluster, namespace: str, path: Path) -> None:
    proc = kubectl(cluster, "apply", "-n", namespace, "-f", str(path))
    assert proc.returncode == 0, proc.stderr
    assert "agent.aura.dev/" in proc.stdout


def test_there_are_several_examples() -> None:
    assert len(list((MANIFESTS / "examples").glob("*.yaml"))) >= 3


# -- hack/kind-up.sh (needs Docker, so here only its refusals and syntax) -----------------


@pytest.fixture
def bare_path(tmp_path: Path) -> Path:
    """A PATH directory with the basics but neither docker nor kind."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "env", "dirname", "cat", "grep", "mktemp", "rm", "kubectl"):
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    return bin_dir


def run_kind_up(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [shutil.which("bash") or "bash", str(REPO / "hack" / "kind-up.sh")],
        env={"PATH": str(path), "HOME": os.environ.get("HOME", "/tmp")},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_kind_up_is_valid_bash() -> None:
    proc = subprocess.run(["bash", "-n", str(REPO / "hack" / "kind-up.sh")], capture_output=True)
    assert proc.returncode == 0, proc.stderr


def test_kind_up_refuses_clearly_without_docker(bare_path: Path) -> None:
    proc = run_kind_up(bare_path)
    assert proc.returncode != 0
    assert "docker" in proc.stderr and "not found" in proc.stderr, proc.stderr


def test_kind_up_refuses_clearly_without_kind(bare_path: Path) -> None:
    fake = bare_path / "docker"
    fake.write_text("#!/bin/sh\nexit 0\n")  # a docker whose engine answers
    fake.chmod(0o755)
    proc = run_kind_up(bare_path)
    assert proc.returncode != 0
    assert "kind" in proc.stderr and "not found" in proc.stderr, proc.stderr


def test_kind_up_refuses_clearly_without_a_docker_engine(bare_path: Path) -> None:
    for tool in ("docker", "kind"):
        fake = bare_path / tool
        fake.write_text("#!/bin/sh\nexit 1\n")  # installed, but the engine does not answer
        fake.chmod(0o755)
    proc = run_kind_up(bare_path)
    assert proc.returncode != 0
    assert "Docker engine" in proc.stderr, proc.stderr


FAKE_DOCKER = """#!/bin/sh
echo "docker $*" >> "$CALLS"
case "$1" in image) echo "sha256:$(date +%N)";; esac
"""
FAKE_KIND = """#!/bin/sh
echo "kind $*" >> "$CALLS"
case "$1 $2" in "get clusters") echo aura;; esac
"""
# kubectl that drops `--context` (the kind cluster) and sends everything to the test
# cluster, applying only with --dry-run=server.
FAKE_KUBECTL = """#!/usr/bin/env bash
echo "kubectl $*" >> "$CALLS"
args=()
while (($#)); do
  if [[ $1 == --context ]]; then shift 2; continue; fi
  args+=("$1"); shift
done
case "${args[0]}" in
  apply) exec "$REAL_KUBECTL" --kubeconfig "$TEST_KUBECONFIG" "${args[@]}" \\
           --dry-run=server -o yaml ;;
  *) exit 0 ;;
esac
"""


def test_kind_up_deploys_the_built_image_with_the_given_secrets(
    rbac_installed: Cluster, bare_path: Path, tmp_path: Path
) -> None:
    """The whole script with docker and kind faked and kubectl aimed at the test cluster."""
    for name, text in (("docker", FAKE_DOCKER), ("kind", FAKE_KIND), ("kubectl", FAKE_KUBECTL)):
        (bare_path / name).unlink(missing_ok=True)
        (bare_path / name).write_text(text)
        (bare_path / name).chmod(0o755)
    for tool in ("sh", "date", "cp", "ln"):
        if (found := shutil.which(tool)) and not (bare_path / tool).exists():
            (bare_path / tool).symlink_to(found)
    env_file = tmp_path / "bridge.env"
    env_file.write_text("STRIPE_WEBHOOK_SECRET=whsec_real\nAURA_API_TOKENS=real-token\n")
    calls = tmp_path / "calls"
    proc = subprocess.run(
        ["bash", str(REPO / "hack" / "kind-up.sh")],
        env={
            "PATH": str(bare_path),
            "HOME": str(tmp_path),
            "CALLS": str(calls),
            "REAL_KUBECTL": shutil.which("kubectl") or "kubectl",
            "TEST_KUBECONFIG": rbac_installed.kubeconfig,
            "AURA_IMAGE": "localhost/aura:dev",
            "AURA_BRIDGE_ENV_FILE": str(env_file),
        },
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr
    log = calls.read_text()
    assert "docker build -t localhost/aura:dev" in log
    assert "kind load docker-image localhost/aura:dev --name aura" in log
    assert "kind create cluster" not in log, "the cluster exists: idempotent"
    assert "rollout restart" in log, "a rebuilt image under the same tag restarts the pods"
    assert "rollout status deployment/aura-operator" in log
    docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    applied = [item for d in docs for item in (d["items"] if d["kind"] == "List" else [d])]
    deployments = by_kind(applied, "Deployment")
    assert {c["image"] for d in deployments.values() for c in containers(d)} == {
        "localhost/aura:dev"
    }
    secret = by_kind(applied, "Secret")["aura-bridge-secrets"]
    assert set(secret["data"]) == {"STRIPE_WEBHOOK_SECRET", "AURA_API_TOKENS"}
    placeholders = by_kind(applied, "Secret")["aura-operator-credentials"]
    assert "replace-me" in str(placeholders)


# -- kopf peering under the operator's own RBAC -------------------------------------------

KOPF_HANDLERS = """
import os

import kopf

PEER = os.environ["TEST_PEER"]
RUN = os.environ["TEST_RUN"]


# The label filter keeps a cluster-wide replica away from every other test's Agents.
@kopf.on.create("aura.dev", "v1alpha1", "agents", labels={"test.aura.dev/run": RUN})
def handle(patch: kopf.Patch, body: kopf.Body, **_: object) -> None:
    patch.metadata.annotations["test.aura.dev/handled-by"] = PEER
    patch.status["message"] = f"handled by {PEER}"
    kopf.info(body, reason="Handled", message=f"handled by {PEER}")
"""


def service_account_kubeconfig(cluster: Cluster, sa: str, path: Path) -> Path:
    """A kubeconfig that authenticates as the real service account (a bound token)."""
    proc = kubectl(cluster, "create", "token", sa, "-n", SYSTEM_NS, "--duration=10m")
    assert proc.returncode == 0, proc.stderr
    admin = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": admin["clusters"],
        "users": [{"name": sa, "user": {"token": proc.stdout.strip()}}],
        "contexts": [
            {"name": sa, "context": {"cluster": admin["clusters"][0]["name"], "user": sa}}
        ],
        "current-context": sa,
    }
    path.write_text(yaml.safe_dump(config))
    return path


class Kopf:
    """One `kopf run` process, as one operator replica, logging to a file."""

    def __init__(self, tmp: Path, env: dict[str, str], scope: str, peer: str, priority: int):
        self.log = tmp / f"{peer}.log"
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(
                [
                    str(REPO / ".venv" / "bin" / "kopf"), "run", str(tmp / "handlers.py"),
                    scope, f"--peering={env['TEST_RUN']}", f"--priority={priority}",
                    "--verbose",
                ],
                env={**os.environ, **env, "TEST_PEER": peer, "POD_ID": peer},
                stdout=out,
                stderr=subprocess.STDOUT,
            )  # fmt: skip

    def wait_for(self, text: str, times: int = 1, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.log.read_text().count(text) >= times:
                return
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            time.sleep(0.2)
        raise AssertionError(f"{text!r} not logged:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def problems(self) -> list[str]:
        lines = self.log.read_text().splitlines()
        bad = re.compile(r"\[(WARNING|ERROR|CRITICAL) *\]|Forbidden")
        return [line for line in lines if bad.search(line)]


def handled_by(cluster: Cluster, ns: str, name: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        agent = cluster.custom.get_namespaced_custom_object(
            "aura.dev", "v1alpha1", ns, "agents", name
        )
        peer = (agent["metadata"].get("annotations") or {}).get("test.aura.dev/handled-by")
        if peer and agent.get("status", {}).get("message") == f"handled by {peer}":
            return str(peer)
        time.sleep(0.3)
    raise AssertionError(f"agent {name} was not handled within {timeout}s")


def create_agent(cluster: Cluster, ns: str, name: str, run: str) -> None:
    agent = yaml.safe_load((MANIFESTS / "examples" / "agent-basic.yaml").read_text())
    agent["metadata"] = {"name": name, "labels": {"test.aura.dev/run": run}}
    proc = kubectl(cluster, "create", "-n", ns, "-f", "-", input=yaml.safe_dump(agent))
    assert proc.returncode == 0, proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["cluster-wide", "namespace-shard"])
def test_two_peered_kopf_replicas_take_turns_under_the_operator_rbac(
    rbac_installed: Cluster, namespace: str, tmp_path: Path, mode: str
) -> None:
    """Real kopf, authenticated as the aura-operator service account: the higher priority
    acts, the lower one pauses and takes over when the first one stops. Cluster-wide it peers
    through a ClusterKopfPeering (the default Deployment); restricted to a namespace, through
    a KopfPeering there (a namespace shard, README.md "Sharding")."""
    cluster = rbac_installed
    run = f"t-peering-{uuid.uuid4().hex[:8]}"
    if mode == "cluster-wide":
        scope, peering_ns, kind = "--all-namespaces", [], "ClusterKopfPeering"
    else:
        scope, peering_ns, kind = f"--namespace={namespace}", ["-n", namespace], "KopfPeering"
    peering = f"apiVersion: kopf.dev/v1\nkind: {kind}\nmetadata: {{name: {run}}}\n"
    created = kubectl(cluster, "create", *peering_ns, "-f", "-", input=peering)
    assert created.returncode == 0, created.stderr
    (tmp_path / "handlers.py").write_text(KOPF_HANDLERS)
    kubeconfig = service_account_kubeconfig(cluster, "aura-operator", tmp_path / "kubeconfig")
    env = {"KUBECONFIG": str(kubeconfig), "TEST_RUN": run}

    low = Kopf(tmp_path, env, scope, "replica-low", priority=100)
    high: Kopf | None = None
    try:
        low.wait_for(f"Keep-alive in {run!r}")
        create_agent(cluster, namespace, "first", run)
        assert handled_by(cluster, namespace, "first") == "replica-low"

        high = Kopf(tmp_path, env, scope, "replica-high", priority=200)
        low.wait_for("Pausing operations in favour of")
        high.wait_for(f"Keep-alive in {run!r}")
        create_agent(cluster, namespace, "second", run)
        assert handled_by(cluster, namespace, "second") == "replica-high"

        # Mandatory peering starts paused, so the first "Resuming" was at startup.
        high.stop()  # a clean shutdown removes its keep-alive record at once
        low.wait_for("Resuming operations after the pause", times=2)
        create_agent(cluster, namespace, "third", run)
        assert handled_by(cluster, namespace, "third") == "replica-low"
    finally:
        low.stop()
        if high is not None:
            high.stop()
        kubectl(cluster, "delete", kind.lower(), run, *peering_ns, "--wait=false")
    events = kubectl(cluster, "get", "events", "-n", namespace, "-o", "json")
    reasons = {e["reason"] for e in json.loads(events.stdout)["items"]}
    assert "Handled" in reasons, "kopf posted Events under the operator's RBAC"
    for replica in (low, high):
        assert replica is not None and not replica.problems(), replica.problems()
    # Each Agent was handled by exactly one replica: the paused one never touched "second".
    assert high is not None
    assert f"{namespace}/second] Handler" not in low.log.read_text()
    assert f"{namespace}/second] Handler 'handle' succeeded" in high.log.read_text()
    assert f"{namespace}/first] Handler" not in high.log.read_text()
    assert f"{namespace}/third] Handler" not in high.log.read_text()


# -- the contract with the code: what the Deployments pass is what the components read ----

COMPONENT_SOURCES = {
    "aura-operator": REPO / "operator" / "aura" / "controller",
    "aura-bridge": REPO / "operator" / "aura" / "bridge",
}


@pytest.mark.parametrize("name", sorted(COMPONENT_SOURCES))
def test_deployment_args_are_accepted_by_the_cli(rendered: list[Obj], name: str) -> None:
    import click

    from aura.cli import main

    (container,) = containers(by_kind(rendered, "Deployment")[name])
    subcommand, *args = container["args"]
    parent = click.Context(main)
    command = main.get_command(parent, subcommand)
    assert command is not None, f"`aura {subcommand}` does not exist"
    try:
        command.make_context(subcommand, list(args), parent=parent)  # parses, never runs
    except click.ClickException as exc:
        pytest.fail(f"`aura {' '.join(container['args'])}`: {exc.format_message()}")


@pytest.mark.parametrize("name", sorted(COMPONENT_SOURCES))
def test_deployment_env_is_read_by_the_component(rendered: list[Obj], name: str) -> None:
    """Every variable a Deployment sets is named in that component's code (POD_ID in kopf's)."""
    (container,) = containers(by_kind(rendered, "Deployment")[name])
    sources = "\n".join(p.read_text() for p in COMPONENT_SOURCES[name].rglob("*.py"))
    kopf_sources = "\n".join(p.read_text() for p in Path(kopf.__file__).parent.rglob("*.py"))
    unread = [
        env["name"]
        for env in container["env"]
        if f'"{env["name"]}"' not in sources
        and not (env["name"] == "POD_ID" and "'POD_ID'" in kopf_sources)
    ]
    assert not unread, f"{name} sets {unread}, which its code never reads"
