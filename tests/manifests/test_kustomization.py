"""manifests/ and crds/ on a real kube-apiserver: the kustomization applies under the
`restricted` Pod Security profile, the CRDs apply both ways, and the sample Agents are accepted.

Only `--dry-run=server` for Aura's own objects, so no other test sees an Aura Deployment."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from tests.kube import Cluster
from tests.manifests.support import (
    CRDS,
    MANIFESTS,
    OPERATOR,
    kubectl,
)

pytestmark = pytest.mark.integration


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
    text = (MANIFESTS / "operator" / "operator.yaml").read_text()
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


# -- sample Agents ------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted((MANIFESTS / "examples").glob("*.yaml")), ids=str)
def test_example_agents_are_accepted(cluster: Cluster, namespace: str, path: Path) -> None:
    proc = kubectl(cluster, "apply", "-n", namespace, "-f", str(path))
    assert proc.returncode == 0, proc.stderr
    assert "agent.aura.dev/" in proc.stdout
