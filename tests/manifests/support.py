"""Shared by the manifests tests: where things are, who the service accounts are, and
kubectl/kustomize helpers that keep stdout and stderr (the apiserver's warnings matter here)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.kube import REPO, Cluster

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


def containers(deployment: Obj) -> list[Obj]:
    result: list[Obj] = deployment["spec"]["template"]["spec"]["containers"]
    return result
