"""End to end: the sandbox's Stripe (driven by the official `stripe` client and its admin
actions) delivers signed webhooks to a running bridge, which re-reads subscriptions from the
sandbox and writes Agents to the real apiserver."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import stripe
from fastapi import FastAPI, Request, Response
from kubernetes_asyncio import config as kconfig

from aura.bridge.app import create_app
from aura.bridge.config import BridgeConfig
from aura.bridge.errors import Permanent, Retryable
from aura.bridge.stripe_api import StripeClientApi
from aura.models import GROUP, PLURAL, VERSION
from aura_sandbox.harness import Sandbox
from tests.bridge.conftest import SECRET, TOKEN, LateStripe, serving
from tests.kube import Cluster
from tests.polling import wait_for_async

pytestmark = pytest.mark.integration


@pytest.fixture
async def bridge_url(cluster: Cluster, namespace: str) -> AsyncIterator[dict[str, Any]]:
    """A bridge on a real port; the sandbox is started once its URL is known."""
    api = await kconfig.new_client_from_config(config_file=cluster.kubeconfig)
    holder: dict[str, Any] = {}

    config = BridgeConfig(
        webhook_secrets=(SECRET,), api_tokens=frozenset({TOKEN}), default_namespace=namespace
    )
    app = create_app(config, api, LateStripe(holder))
    async with app.router.lifespan_context(app), serving(app) as url:
        with Sandbox(
            time_scale=0.001,
            stripe_webhook_url=f"{url}/v1/stripe/webhook",
            stripe_webhook_secret=SECRET,
        ) as sb:
            holder["api"] = StripeClientApi(sb.info["stripe_api_key"], sb.info["stripe_url"])
            yield {"sb": sb, "url": url, "app": app, "namespace": namespace}
            await holder["api"].close()
    await api.close()


def desired(cluster: Cluster, namespace: str, name: str) -> str | None:
    try:
        agent = cluster.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    except Exception:
        return None
    return str(agent["spec"]["desiredState"])


async def test_checkout_to_cancel_through_the_sandbox(
    bridge_url: dict[str, Any], cluster: Cluster
) -> None:
    sb: Sandbox = bridge_url["sb"]
    ns = bridge_url["namespace"]
    assert sb.info["stripe_url"].endswith("/stripe")
    client = stripe.StripeClient(
        sb.info["stripe_api_key"], base_addresses={"api": sb.info["stripe_url"]}
    )
    customer = await asyncio.to_thread(client.v1.customers.create, {"email": "a@example.com"})
    price = await asyncio.to_thread(
        client.v1.prices.create,
        {"currency": "eur", "unit_amount": 2900, "recurring": {"interval": "month"}},
    )
    session = await asyncio.to_thread(
        client.v1.checkout.sessions.create,
        {
            "mode": "subscription",
            "customer": customer.id,
            "line_items": [{"price": price.id, "quantity": 1}],
            "metadata": {"agent_name": "sandboxed"},
            "success_url": "https://example.com/ok",
        },
    )
    admin = httpx.AsyncClient(base_url=sb.ready.admin_url.removesuffix("/admin"))
    done = await admin.post(f"/admin/stripe/checkout/{session.id}/complete")
    assert done.status_code == 200, done.text
    sub_id = done.json()["subscription"]
    await wait_for_async(lambda: desired(cluster, ns, "sandboxed") == "running")

    failed = await admin.post(f"/admin/stripe/subscriptions/{sub_id}/fail_payment", json={})
    assert failed.status_code == 200
    await wait_for_async(lambda: desired(cluster, ns, "sandboxed") == "suspended")

    paid = await admin.post(f"/admin/stripe/invoices/{failed.json()['id']}/pay")
    assert paid.status_code == 200
    await wait_for_async(lambda: desired(cluster, ns, "sandboxed") == "running")

    # Changes made through the Stripe API itself also produce delivered events.
    updated = await asyncio.to_thread(
        client.v1.subscriptions.update, sub_id, {"cancel_at_period_end": True}
    )
    assert updated.cancel_at_period_end is True
    paused = await asyncio.to_thread(client.v1.subscriptions.pause, sub_id)
    assert paused.status == "paused"
    await wait_for_async(lambda: desired(cluster, ns, "sandboxed") == "stopped")
    resumed = await asyncio.to_thread(client.v1.subscriptions.resume, sub_id)
    assert resumed.status == "active"
    await wait_for_async(lambda: desired(cluster, ns, "sandboxed") == "running")
    canceled = await asyncio.to_thread(client.v1.subscriptions.cancel, sub_id)
    assert canceled.status == "canceled"
    await wait_for_async(lambda: desired(cluster, ns, "sandboxed") == "deleted")

    deliveries = (await admin.get("/admin/stripe/deliveries")).json()
    assert deliveries
    assert all(d["delivered"] and d["last_status"] == 200 for d in deliveries)
    assert {
        "checkout.session.completed",
        "invoice.payment_failed",
        "customer.subscription.updated",
        "customer.subscription.paused",
        "customer.subscription.resumed",
        "customer.subscription.deleted",
    } <= {d["type"] for d in deliveries}
    await admin.aclose()


async def test_deliveries_are_signed_and_retried() -> None:
    received: list[tuple[str, bytes]] = []
    app = FastAPI()

    @app.post("/hook")
    async def hook(request: Request) -> Response:
        received.append((request.headers["stripe-signature"], await request.body()))
        return Response(status_code=500 if len(received) < 3 else 200)

    async with serving(app) as url:
        with Sandbox(
            time_scale=0.0005, stripe_webhook_url=f"{url}/hook", stripe_webhook_secret=SECRET
        ) as sb:
            client = stripe.StripeClient(
                sb.info["stripe_api_key"], base_addresses={"api": sb.info["stripe_url"]}
            )
            await asyncio.to_thread(client.v1.customers.create, {"name": "Retry"})
            await wait_for_async(lambda: len(received) >= 3, within=10)
            admin = httpx.AsyncClient(base_url=sb.ready.admin_url.removesuffix("/admin"))
            deliveries = (await admin.get("/admin/stripe/deliveries")).json()
            await admin.aclose()
    assert deliveries == [
        {
            "event": deliveries[0]["event"],
            "type": "customer.created",
            "attempts": 3,
            "last_status": 200,
            "delivered": True,
        }
    ]
    for header, body in received:
        # The official library accepts every attempt; the body is the same event each time.
        event = stripe.Webhook.construct_event(body, header, SECRET)
        assert event.type == "customer.created"
        assert event.livemode is False
        assert json.loads(body)["id"] == deliveries[0]["event"]


async def test_stripe_api_errors_and_auth() -> None:
    with Sandbox() as sb:
        client = stripe.StripeClient(
            sb.info["stripe_api_key"], base_addresses={"api": sb.info["stripe_url"]}
        )
        with pytest.raises(stripe.InvalidRequestError) as missing:
            await asyncio.to_thread(client.v1.subscriptions.retrieve, "sub_missing")
        assert missing.value.http_status == 404
        bad = stripe.StripeClient("sk_test_wrong", base_addresses={"api": sb.info["stripe_url"]})
        with pytest.raises(stripe.AuthenticationError):
            await asyncio.to_thread(bad.v1.customers.create, {})
        adapter = StripeClientApi(sb.info["stripe_api_key"], sb.info["stripe_url"])
        assert await adapter.retrieve_subscription("sub_missing") is None
        await adapter.close()


async def test_adapter_returns_plain_json_and_classifies_errors() -> None:
    with Sandbox() as sb:
        base, key = sb.info["stripe_url"], sb.info["stripe_api_key"]
        client = stripe.StripeClient(key, base_addresses={"api": base})
        customer = await asyncio.to_thread(client.v1.customers.create, {"name": "plain"})
        price = await asyncio.to_thread(
            client.v1.prices.create, {"currency": "eur", "unit_amount": 900}
        )
        sub = await asyncio.to_thread(
            client.v1.subscriptions.create,
            {"customer": customer.id, "items": [{"price": price.id}]},
        )
        adapter = StripeClientApi(key, base)
        found = await adapter.retrieve_subscription(sub.id)
        assert found is not None
        assert not isinstance(found, stripe.StripeObject)  # the JSON as parsed, no object tree
        assert (found["id"], found["status"], found["customer"]) == (sub.id, "active", customer.id)
        assert found["items"]["data"][0]["price"]["id"] == price.id
        # The id is one path segment: a slash cannot reach another route.
        assert await adapter.retrieve_subscription(f"{sub.id}/x") is None
        await adapter.close()
        wrong = StripeClientApi("sk_test_wrong", base)
        with pytest.raises(Permanent, match="rejected the API key") as refused:
            await wrong.retrieve_subscription(sub.id)
        assert "sk_test_wrong" not in str(refused.value)
        await wrong.close()


@pytest.mark.parametrize(
    ("fault", "error", "message"),
    [
        ({"kind": "http_error", "status": 500}, Retryable, "stripe unavailable (500"),
        ({"kind": "http_error", "status": 409, "code": "lock_timeout"}, Retryable, "409"),
        ({"kind": "rate_limit"}, Retryable, "stripe unavailable (429"),
        ({"kind": "http_error", "status": 400, "code": "parameter_invalid"}, Permanent, "400"),
        ({"kind": "http_error", "status": 403}, Permanent, "rejected the API key (403)"),
        ({"kind": "timeout", "delay": 3}, Retryable, "stripe unreachable"),
    ],
)
async def test_adapter_classifies_stripe_failures(
    fault: dict[str, Any], error: type[Exception], message: str
) -> None:
    """Each answer Stripe may give to the re-read, injected by the sandbox on the one route the
    adapter calls: transient ones are `Retryable` (the event's own object is used), refusals
    `Permanent`; neither message carries the key. The next read succeeds again."""
    with Sandbox() as sb:
        base, key = sb.info["stripe_url"], sb.info["stripe_api_key"]
        client = stripe.StripeClient(key, base_addresses={"api": base})
        customer = await asyncio.to_thread(client.v1.customers.create, {"name": "faults"})
        price = await asyncio.to_thread(
            client.v1.prices.create, {"currency": "eur", "unit_amount": 900}
        )
        sub = await asyncio.to_thread(
            client.v1.subscriptions.create,
            {"customer": customer.id, "items": [{"price": price.id}]},
        )
        async with httpx.AsyncClient() as admin:
            spec = {**fault, "method": "GET", "path": "^/stripe/v1/subscriptions/"}
            added = await admin.post(f"{sb.info['admin_url']}/faults", json=spec)
            assert added.status_code == 201, added.text
        adapter = StripeClientApi(key, base, timeout=0.5)
        try:
            with pytest.raises(error, match=re.escape(message)) as raised:
                await adapter.retrieve_subscription(sub.id)
            assert key not in str(raised.value)
            found = await adapter.retrieve_subscription(sub.id)
            assert found is not None and found["id"] == sub.id
        finally:
            await adapter.close()
