"""Aura's own apiserver client (kubernetes_asyncio) keeps a bounded connection pool."""

from __future__ import annotations

import asyncio

from aura.controller.clients.kube import KubeClients
from aura.controller.clients.kube_pool import MAX_CONNECTIONS
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
