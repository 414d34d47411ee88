"""Aura's own apiserver client (kubernetes_asyncio): a bounded pool, paged trimmed lists."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from aura.controller.clients import kube as kube_module
from aura.controller.clients.kube import KubeClients
from aura.controller.clients.kube_pool import MAX_CONNECTIONS
from aura.models import GROUP, PLURAL, VERSION
from tests.kube import Cluster


def test_kube_clients_bound_their_connections(cluster: Cluster, namespace: str) -> None:
    async def run() -> tuple[int, int]:
        kube = await KubeClients.connect()
        try:
            # Twice the limit at once: the extra requests wait for a connection, none fails.
            lists = await asyncio.gather(
                *(kube.list_agents(namespace) for _ in range(MAX_CONNECTIONS * 2))
            )
            return kube.api.rest_client.pool_manager.connector.limit, len(lists)
        finally:
            await kube.close()

    limit, answered = asyncio.run(run())
    assert limit == MAX_CONNECTIONS
    assert answered == MAX_CONNECTIONS * 2


def test_list_agents_reads_every_page_and_drops_managed_fields(
    cluster: Cluster, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = [f"paged-{i}" for i in range(5)]
    for name in names:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Agent",
            "metadata": {"name": name},
            "spec": {"desiredState": "stopped"},
        }
        cluster.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
    monkeypatch.setattr(kube_module, "LIST_PAGE", 2)  # five Agents in three pages

    async def run() -> list[dict[str, Any]]:
        kube = await KubeClients.connect()
        try:
            return await kube.list_agents(namespace)
        finally:
            await kube.close()

    items = asyncio.run(run())
    assert sorted(i["metadata"]["name"] for i in items) == names
    assert all("managedFields" not in i["metadata"] for i in items)
    assert all(i["spec"]["desiredState"] == "stopped" for i in items)
