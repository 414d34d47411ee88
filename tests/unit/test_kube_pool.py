"""Connection pools: kopf's apiserver session is bounded; the gateway client is not capped."""

from __future__ import annotations

import sys

import kopf

from aura.controller import app
from aura.controller.clients import kube_pool
from aura.controller.settings import OperatorConfig


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


def test_the_gateway_client_never_waits_for_a_pool_slot() -> None:
    """httpcore can leave cancelled connections stuck in its pool (app.gateway_client): the
    probes' client has no connection cap, so stuck entries cannot block healthy probes."""
    client = app.gateway_client(OperatorConfig())
    pool = client._transport._pool  # type: ignore[attr-defined]
    assert pool._max_connections == sys.maxsize  # httpcore's "no limit"
    assert pool._max_keepalive_connections == app.GATEWAY_KEEPALIVE
