"""kopf peering under the operator's own RBAC: two real kopf processes as the operator's
service account take turns, with uniquely named peering objects (deleted afterwards)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import yaml

from tests.kube import REPO, Cluster
from tests.manifests.support import (
    MANIFESTS,
    SYSTEM_NS,
    kubectl,
)
from tests.polling import wait_for

pytestmark = pytest.mark.integration


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
        def logged() -> bool:
            if self.proc.poll() is not None:  # fail at once, not at the timeout
                raise RuntimeError(f"kopf exited:\n{self.log.read_text()[-3000:]}")
            return self.log.read_text().count(text) >= times

        try:
            wait_for(logged, timeout, 0.2, f"{text!r} logged {times} time(s)")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.log.read_text()[-3000:]}") from None

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
