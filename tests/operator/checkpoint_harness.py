"""Helpers for the checkpoint tests: AgentCheckpoint/AgentRestore objects, sandbox disks and
images, read through the sandbox's admin API and the official hcloud client."""

from __future__ import annotations

from typing import Any

import httpx
from kubernetes.client.exceptions import ApiException

from aura.checkpoint_models import CHECKPOINT_PLURAL, RESTORE_PLURAL
from aura.models import GROUP, VERSION
from aura_sandbox.harness import Sandbox
from tests.kube import Cluster
from tests.operator.harness import wait_for

CHECKPOINT_FLAGS = {
    "checkpoint-poll-interval": "0.3",
    "checkpoint-schedule-interval": "1",
    "checkpoint-jitter": "0",
}


def create(
    cluster: Cluster, namespace: str, plural: str, kind: str, name: str, **spec: Any
) -> None:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }
    cluster.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, body)


def get(cluster: Cluster, namespace: str, plural: str, name: str) -> dict[str, Any] | None:
    try:
        obj: dict[str, Any] = cluster.custom.get_namespaced_custom_object(
            GROUP, VERSION, namespace, plural, name
        )
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return obj


def wait_status(
    cluster: Cluster, namespace: str, plural: str, name: str, phase: str, timeout: float = 60
) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        obj = get(cluster, namespace, plural, name)
        if obj and (obj.get("status") or {}).get("phase") == phase:
            return obj
        return None

    try:
        return wait_for(check, timeout, what=f"{plural}/{name} phase {phase}")
    except AssertionError:
        obj = get(cluster, namespace, plural, name) or {}
        raise AssertionError(f"{name} never reached {phase}: {obj.get('status')}") from None


def checkpoint(cluster: Cluster, namespace: str, name: str, agent: str, **spec: Any) -> None:
    create(cluster, namespace, CHECKPOINT_PLURAL, "AgentCheckpoint", name, agentName=agent, **spec)


def restore(
    cluster: Cluster, namespace: str, name: str, agent: str, ckpt: str, **spec: Any
) -> None:
    create(
        cluster, namespace, RESTORE_PLURAL, "AgentRestore", name,
        agentName=agent, checkpointName=ckpt, **spec,
    )  # fmt: skip


def write_file(sandbox: Sandbox, server_id: int, path: str, data: bytes) -> None:
    url = f"{sandbox.admin_url}/servers/{server_id}/disk/{path}"
    httpx.put(url, content=data, timeout=10).raise_for_status()


def read_file(sandbox: Sandbox, server_id: int, path: str) -> bytes:
    response = httpx.get(f"{sandbox.admin_url}/servers/{server_id}/disk/{path}", timeout=10)
    response.raise_for_status()
    return response.content


def images(sandbox: Sandbox, selector: str = "aura.dev/managed-by=aura-operator") -> list[Any]:
    """Snapshot images as the official client lists them."""
    return list(sandbox.hcloud().images.get_all(type=["snapshot"], label_selector=selector))
