"""The local control plane for tests: a real kube-apiserver + etcd, never a mock.

By default `hack/envtest.sh up` starts (or reuses) the cluster built from source. Set
`AURA_TEST_USE_EXISTING_CLUSTER=1` to run against the cluster in `KUBECONFIG` instead
(for example kind on a machine with Docker); tests only ever touch namespaces they create.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from kubernetes import client, config

REPO = Path(__file__).resolve().parent.parent
ENVTEST = REPO / "hack" / "envtest.sh"


@dataclass(frozen=True)
class Cluster:
    """A reachable cluster with the Aura CRDs installed."""

    kubeconfig: str
    api: client.ApiClient
    started_here: bool

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> str:
        """Run kubectl against this cluster; returns stdout, raises with stderr on failure."""
        proc = subprocess.run(
            ["kubectl", "--kubeconfig", self.kubeconfig, *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc.stdout if proc.returncode == 0 else proc.stderr


def _envtest(command: str) -> str:
    proc = subprocess.run(
        ["bash", str(ENVTEST), command], capture_output=True, text=True, timeout=1800
    )
    if proc.returncode != 0:
        raise RuntimeError(f"hack/envtest.sh {command} failed:\n{proc.stderr[-4000:]}")
    return proc.stdout


def start_cluster() -> Cluster:
    """Start or reuse a cluster, install the CRDs and wait until they are served."""
    started_here = False
    if os.environ.get("AURA_TEST_USE_EXISTING_CLUSTER") == "1":
        kubeconfig = os.environ.get("KUBECONFIG", str(Path.home() / ".kube" / "config"))
    else:
        started_here = (
            subprocess.run(
                ["bash", str(ENVTEST), "status"], capture_output=True, check=False
            ).returncode
            != 0
        )
        line = _envtest("up").strip().splitlines()[-1]
        kubeconfig = line.removeprefix("export KUBECONFIG=")
    os.environ["KUBECONFIG"] = kubeconfig
    api = config.new_client_from_config(config_file=kubeconfig)
    cluster = Cluster(kubeconfig=kubeconfig, api=api, started_here=started_here)
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"))
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/agents.aura.dev")
    return cluster


def stop_cluster(cluster: Cluster) -> None:
    """Stop the control plane if this test session started it."""
    cluster.api.close()
    if cluster.started_here and os.environ.get("AURA_TEST_KEEP_CLUSTER") != "1":
        _envtest("down")


def fresh_namespace(cluster: Cluster, hint: str) -> Iterator[str]:
    """Create a uniquely named namespace. It is not deleted afterwards: without a
    kube-controller-manager namespace deletion never finishes, and the cluster is throw-away."""
    slug = "".join(c if c.isalnum() else "-" for c in hint.lower())[:30].strip("-")
    name = f"t-{slug}-{uuid.uuid4().hex[:6]}"
    cluster.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
