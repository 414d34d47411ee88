"""kopf's apiserver session is built like kopf's own, but with a bounded connection pool."""

from __future__ import annotations

import kopf

from aura.controller.clients import kube_pool


async def test_bounded_session_keeps_kopfs_credentials_and_limits_connections() -> None:
    info = kopf.ConnectionInfo(
        server="https://apiserver.example:6443",
        token="not-a-real-token",
        default_namespace="aura",
        insecure=True,
    )
    context = kube_pool.bounded_session(info)
    try:
        assert isinstance(context, kopf.AiohttpSession)
        assert context.server == info.server
        assert context.default_namespace == "aura"
        session = context.aiohttp_session
        assert session.connector is not None
        assert session.connector.limit == kube_pool.MAX_CONNECTIONS > 0
        assert session.headers["Authorization"] == "Bearer not-a-real-token"
    finally:
        await context.aiohttp_session.close()
