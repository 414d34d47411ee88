"""A real 409 from the apiserver between read and patch, brief outages, and 5xx only when the
event could not be recorded."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from kubernetes_asyncio import config as kconfig

from aura.bridge.agents import Agent, AgentStore
from aura.bridge.app import create_app
from aura.bridge.config import BridgeConfig
from aura.bridge.errors import Retryable
from aura.models import GROUP, PLURAL, VERSION
from tests.bridge.conftest import (
    SECRET,
    Bridge,
    FakeStripe,
    checkout,
    checkout_obj,
    make_event,
    new_id,
    sign,
    subscription_obj,
)
from tests.kube import Cluster

pytestmark = pytest.mark.integration


async def test_conflict_on_update_is_retried(make_bridge: Any, cluster: Cluster) -> None:
    calls: list[str] = []

    async def meddle(agent: Agent) -> None:
        # Someone else (the operator, kubectl) writes between our read and our patch, once.
        calls.append(agent.resource_version)
        if len(calls) == 1:
            cluster.custom.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                agent.namespace,
                PLURAL,
                agent.name,
                {"metadata": {"labels": {"touched-by": "someone-else"}}},
            )

    bridge: Bridge = await make_bridge()
    sub, cus, _ = await checkout(bridge, "contested")
    bridge.store.before_write = meddle
    bridge.stripe.put(sub, "unpaid", cus)
    event = make_event("customer.subscription.updated", subscription_obj(sub, cus, "unpaid"))
    response = await bridge.send(event)
    assert response.json() == {"outcome": "applied"}
    assert len(calls) == 2  # the first patch got a real 409, the second one went through
    assert calls[0] != calls[1]
    agent = bridge.agent("contested")
    assert agent["spec"]["desiredState"] == "suspended"
    assert agent["metadata"]["labels"]["touched-by"] == "someone-else"  # their write survived


async def test_brief_outage_is_retried(make_bridge: Any) -> None:
    failures = [Retryable("kubernetes API answered 503"), Retryable("timeout")]

    async def flaky(agent: Agent) -> None:
        if failures:
            raise failures.pop()

    bridge: Bridge = await make_bridge()
    sub, cus, _ = await checkout(bridge, "flaky")
    bridge.store.before_write = flaky
    bridge.stripe.put(sub, "paused", cus)
    event = make_event("customer.subscription.paused", subscription_obj(sub, cus, "paused"))
    assert (await bridge.send(event)).status_code == 200
    assert failures == []
    assert bridge.agent("flaky")["spec"]["desiredState"] == "stopped"


async def test_unreachable_apiserver_is_503_and_the_event_can_be_redelivered(
    cluster: Cluster, namespace: str
) -> None:
    api = await kconfig.new_client_from_config(config_file=cluster.kubeconfig)
    api.configuration.host = "https://127.0.0.1:9"  # nothing listens: connection refused
    config = BridgeConfig(
        webhook_secrets=(SECRET,), default_namespace=namespace, write_deadline=0.5
    )
    fake = FakeStripe()
    app = create_app(config, api, fake, store=AgentStore(api))
    sub, cus = new_id("sub"), new_id("cus")
    fake.put(sub, "active", cus)
    event = make_event("customer.subscription.updated", subscription_obj(sub, cus, "active"))
    body = json.dumps(event)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://bridge"
    ) as http:
        response = await http.post(
            "/v1/stripe/webhook", content=body, headers={"Stripe-Signature": sign(body)}
        )
        assert response.status_code == 503
        assert response.json() == {"error": "could not record the event"}
        # Not remembered as processed: Stripe's retry must be processed again.
        assert not app.state.processor.seen(event["id"])
    await api.close()


class TcpProxy:
    """A byte-forwarding proxy in front of the apiserver that can be switched off: a real
    network outage (connection refused, connections cut), not a mocked client."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in list(self.writers):
            writer.close()
        await self.server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self.writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self.writers -= {writer, up_writer}


async def test_apiserver_outage_is_survived(cluster: Cluster, namespace: str) -> None:
    api = await kconfig.new_client_from_config(config_file=cluster.kubeconfig)
    target = urlsplit(api.configuration.host)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 443)
    await proxy.start()
    api.configuration.host = f"https://127.0.0.1:{proxy.port}"
    fake = FakeStripe()
    config = BridgeConfig(webhook_secrets=(SECRET,), default_namespace=namespace)
    app = create_app(config, api, fake, store=AgentStore(api))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bridge") as http:

        async def send(event: dict[str, Any]) -> httpx.Response:
            body = json.dumps(event)
            return await http.post(
                "/v1/stripe/webhook", content=body, headers={"Stripe-Signature": sign(body)}
            )

        sub, cus = new_id("sub"), new_id("cus")
        fake.put(sub, "active", cus)
        created = await send(make_event("checkout.session.completed", checkout_obj(sub, cus, "o")))
        assert created.json() == {"outcome": "created"}

        await proxy.stop()  # the apiserver is gone...
        fake.put(sub, "unpaid", cus)
        update = make_event("customer.subscription.updated", subscription_obj(sub, cus, "unpaid"))
        pending = asyncio.create_task(send(update))
        await asyncio.sleep(1.0)
        assert not pending.done()  # ...the bridge keeps retrying instead of failing...
        await proxy.start()  # ...and it is back on the same port within the write deadline.
        response = await asyncio.wait_for(pending, 15)
    assert response.json() == {"outcome": "applied"}
    agent = cluster.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "o")
    assert agent["spec"]["desiredState"] == "suspended"
    await proxy.stop()
    await api.close()
