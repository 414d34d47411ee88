"""Fixtures for the manifests tests: the RBAC applied for real, the kustomization rendered."""

from __future__ import annotations

import pytest

from tests.kube import Cluster
from tests.manifests.support import MANIFESTS, Obj, kubectl, kustomize


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
