"""Fixtures for the bridge: the app wired to the REAL apiserver, a stateful fake Stripe API, and
helpers that build and sign Stripe events exactly as Stripe does."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import stripe
import uvicorn
from kubernetes_asyncio import config as kconfig

from aura.bridge.agents import AgentStore, BeforeWrite
from aura.bridge.app import create_app
from aura.bridge.config import BridgeConfig, PlanBook
from aura.bridge.errors import Retryable
from aura.models import GROUP, PLURAL, VERSION
from tests.kube import Cluster

SECRET = "whsec_test_current_0123456789abcdef"
OLD_SECRET = "whsec_test_previous_0123456789abcdef"
TOKEN = "tok_dashboard_0123456789"
_ids = itertools.count(1)


def new_id(prefix: str) -> str:
    return f"{prefix}_{int(time.time() * 1000):x}{next(_ids):06d}"


class FakeStripe:
    """A stateful in-memory `StripeApi`: the current subscriptions, plus an outage switch."""

    def __init__(self) -> None:
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.down = False
        self.calls = 0

    def put(self, sub_id: str, status: str, customer: str, price: str = "price_basic") -> None:
        self.subscriptions[sub_id] = {
            "id": sub_id,
            "object": "subscription",
            "status": status,
            "customer": customer,
            "items": {"object": "list", "data": [{"price": {"id": price}}]},
        }

    async def retrieve_subscription(self, subscription_id: str) -> dict[str, Any] | None:
        self.calls += 1
        if self.down:
            raise Retryable("stripe unavailable (503)")
        sub = self.subscriptions.get(subscription_id)
        return dict(sub) if sub else None

    async def close(self) -> None:
        return None


def make_event(
    type_: str, obj: dict[str, Any], created: int | None = None, event_id: str | None = None
) -> dict[str, Any]:
    return {
        "id": event_id or new_id("evt"),
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": created if created is not None else int(time.time()),
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": type_,
        "data": {"object": obj},
    }


def subscription_obj(sub_id: str, customer: str, status: str) -> dict[str, Any]:
    return {"id": sub_id, "object": "subscription", "customer": customer, "status": status}


def invoice_obj(sub_id: str, customer: str) -> dict[str, Any]:
    return {
        "id": new_id("in"),
        "object": "invoice",
        "customer": customer,
        "parent": {
            "type": "subscription_details",
            "subscription_details": {"subscription": sub_id},
        },
    }


def checkout_obj(
    sub_id: str, customer: str, name: str | None, namespace: str | None = None
) -> dict[str, Any]:
    metadata = {}
    if name is not None:
        metadata["agent_name"] = name
    if namespace is not None:
        metadata["agent_namespace"] = namespace
    return {
        "id": new_id("cs"),
        "object": "checkout.session",
        "mode": "subscription",
        "customer": customer,
        "subscription": sub_id,
        "metadata": metadata,
    }


def sign(body: str, secret: str = SECRET, timestamp: int | None = None) -> str:
    return stripe.WebhookSignature.generate_signature_header(
        body, secret, timestamp=timestamp if timestamp is not None else int(time.time())
    )


@dataclass(repr=False)
class Bridge:
    """The bridge app under test, its HTTP client, and the real cluster behind it."""

    http: httpx.AsyncClient
    stripe: FakeStripe
    cluster: Cluster
    namespace: str
    store: AgentStore
    app: Any
    posted: list[dict[str, Any]] = field(default_factory=list)

    async def send(self, event: dict[str, Any], secret: str = SECRET) -> httpx.Response:
        body = json.dumps(event)
        self.posted.append(event)
        return await self.http.post(
            "/v1/stripe/webhook",
            content=body,
            headers={"Stripe-Signature": sign(body, secret), "Content-Type": "application/json"},
        )

    def agent(self, name: str, namespace: str | None = None) -> dict[str, Any]:
        return self.cluster.custom.get_namespaced_custom_object(
            GROUP, VERSION, namespace or self.namespace, PLURAL, name
        )

    def agents(self) -> list[dict[str, Any]]:
        result = self.cluster.custom.list_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL
        )
        return list(result["items"])


@pytest.fixture
async def make_bridge(cluster: Cluster, namespace: str) -> AsyncIterator[Callable[..., Any]]:
    """`await make_bridge(**config_overrides, before_write=hook)` -> a running `Bridge`."""
    opened: list[Any] = []

    async def factory(before_write: BeforeWrite | None = None, **overrides: Any) -> Bridge:
        api = await kconfig.new_client_from_config(config_file=cluster.kubeconfig)
        values: dict[str, Any] = {
            "webhook_secrets": (SECRET, OLD_SECRET),
            "stripe_api_key": "sk_test_fake",
            "api_tokens": frozenset({TOKEN}),
            "default_namespace": namespace,
            "plans": PlanBook.model_validate(
                {
                    "default": {"server": {"type": "cx22"}},
                    "prices": {"price_big": {"server": {"type": "cpx31"}}},
                }
            ),
        }
        values.update(overrides)
        fake = FakeStripe()
        store = AgentStore(api, before_write=before_write)
        app = create_app(BridgeConfig(**values), api, fake, store=store)
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bridge")
        opened.append((lifespan, http, api))
        return Bridge(http, fake, cluster, namespace, store, app)

    yield factory
    for lifespan, http, api in reversed(opened):
        await http.aclose()
        await lifespan.__aexit__(None, None, None)
        await api.close()


@pytest.fixture
async def bridge(make_bridge: Callable[..., Any]) -> Bridge:
    """A bridge with the default configuration."""
    result: Bridge = await make_bridge()
    return result


async def checkout(
    bridge: Bridge, name: str, status: str = "active", price: str = "price_basic"
) -> tuple[str, str, httpx.Response]:
    """Complete a checkout for a new subscription; returns (subscription, customer, response)."""
    sub_id, customer = new_id("sub"), new_id("cus")
    bridge.stripe.put(sub_id, status, customer, price)
    response = await bridge.send(
        make_event("checkout.session.completed", checkout_obj(sub_id, customer, name))
    )
    return sub_id, customer, response


@asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """Run `app` with uvicorn on a free local port (streaming needs a real server)."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 (uvicorn offers no event to wait on)
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


class LateStripe:
    """A `StripeApi` whose adapter is set once the sandbox is up (`holder["api"]`): the bridge
    must serve before the sandbox, which needs the bridge's URL for its webhook deliveries."""

    def __init__(self, holder: dict[str, Any]) -> None:
        self._holder = holder

    async def retrieve_subscription(self, sub_id: str) -> dict[str, Any] | None:
        result: dict[str, Any] | None = await self._holder["api"].retrieve_subscription(sub_id)
        return result

    async def close(self) -> None:
        await self._holder["api"].close()
