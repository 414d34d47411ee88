"""Revenue and margin end to end: a subscription created through the sandbox's Stripe (official
`stripe` client), the real bridge writing the Agent with the price, the real operator pricing
its server from the sandbox's Hetzner.

Prices: CX22 nbg1 at 0.01/h capped at 5.00/month, IPv4 0.632/month (0.001/h). A server that
lives on all month is projected at the caps, 5.00 + 0.632 = 5.632 (created this month).
Subscription 29.00 EUR/month -> margin 29.00 - 5.632 = 23.368. A 4.00 EUR/month plan is
oversized for its server: margin 4.00 - 5.632 = -1.632, a Warning Event and a metric.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import stripe
from kubernetes_asyncio import config as kconfig
from prometheus_client.parser import text_string_to_metric_families

from aura.bridge.app import create_app
from aura.bridge.config import BridgeConfig
from aura.bridge.stripe_api import StripeClientApi
from aura_sandbox.harness import Sandbox
from tests.bridge.conftest import SECRET, TOKEN, LateStripe, serving
from tests.kube import Cluster
from tests.operator.harness import OperatorProcess, events, get_agent, wait_for

pytestmark = pytest.mark.integration

PRICES = {
    "server_types": {"cx22": {"nbg1": {"monthly": 5.0, "hourly": 0.01}}},
    "primary_ipv4_monthly": 0.632,
}


@pytest.fixture
async def world(cluster: Cluster, namespace: str, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    api = await kconfig.new_client_from_config(config_file=cluster.kubeconfig)
    holder: dict[str, Any] = {}

    config = BridgeConfig(
        webhook_secrets=(SECRET,), api_tokens=frozenset({TOKEN}), default_namespace=namespace
    )
    app = create_app(config, api, LateStripe(holder))
    async with app.router.lifespan_context(app), serving(app) as url:
        with Sandbox(
            time_scale=0.02,
            stripe_webhook_url=f"{url}/v1/stripe/webhook",
            stripe_webhook_secret=SECRET,
        ) as sb:
            holder["api"] = StripeClientApi(sb.info["stripe_api_key"], sb.info["stripe_url"])
            admin = httpx.AsyncClient(base_url=sb.ready.admin_url.removesuffix("/admin"))
            assert (await admin.put("/admin/pricing", json=PRICES)).status_code == 200
            port = _free_port()
            operator = OperatorProcess(
                cluster,
                namespace,
                sb,
                tmp_path / "operator.log",
                cost_interval="1",
                metrics_port=str(port),
            ).start()
            try:
                yield {"sb": sb, "admin": admin, "url": url, "metrics": port}
            finally:
                operator.stop()
                await admin.aclose()
                await holder["api"].close()
    await api.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def samples(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def subscribe(sb: Sandbox, admin: httpx.AsyncClient, name: str, cents: int) -> str:
    client = stripe.StripeClient(
        sb.info["stripe_api_key"], base_addresses={"api": sb.info["stripe_url"]}
    )
    customer = await asyncio.to_thread(client.v1.customers.create, {"email": f"{name}@x.test"})
    price = await asyncio.to_thread(
        client.v1.prices.create,
        {"currency": "eur", "unit_amount": cents, "recurring": {"interval": "month"}},
    )
    session = await asyncio.to_thread(
        client.v1.checkout.sessions.create,
        {
            "mode": "subscription",
            "customer": customer.id,
            "line_items": [{"price": price.id, "quantity": 1}],
            "metadata": {"agent_name": name},
            "success_url": "https://example.com/ok",
        },
    )
    done = await admin.post(f"/admin/stripe/checkout/{session.id}/complete")
    assert done.status_code == 200, done.text
    return str(done.json()["subscription"])


def cost(cluster: Cluster, ns: str, name: str) -> dict[str, Any]:
    return dict(((get_agent(cluster, ns, name) or {}).get("status") or {}).get("cost") or {})


async def test_margin_from_a_sandbox_subscription(
    world: dict[str, Any], cluster: Cluster, namespace: str
) -> None:
    sb, admin = world["sb"], world["admin"]
    await subscribe(sb, admin, "paying", 2900)
    await subscribe(sb, admin, "cheap", 400)

    def priced(name: str) -> dict[str, Any] | None:
        c = cost(cluster, namespace, name)
        return c if c.get("margin") is not None and c.get("servers") else None

    await asyncio.to_thread(
        wait_for, lambda: priced("paying") and priced("cheap"), 90, what="both Agents priced"
    )
    agent = get_agent(cluster, namespace, "paying") or {}
    # The bridge recorded the Stripe price on the Agent.
    assert agent["spec"]["billing"]["price"] == {
        "unitAmount": 2900,
        "currency": "EUR",
        "interval": "month",
        "intervalCount": 1,
        "quantity": 1,
    }
    paying = priced("paying")
    assert paying is not None, cost(cluster, namespace, "paying")
    assert paying["revenueMonth"] == pytest.approx(29.0)
    assert paying["projectedMonth"] == pytest.approx(5.632)
    assert paying["margin"] == pytest.approx(29.0 - 5.632)

    cheap = priced("cheap")
    assert cheap is not None
    assert cheap["margin"] == pytest.approx(4.0 - 5.632)
    wait_for(
        lambda: any(e["reason"] == "NegativeMargin" for e in events(cluster, namespace, "cheap")),
        20,
        what="a NegativeMargin Event",
    )
    assert not any(e["reason"] == "NegativeMargin" for e in events(cluster, namespace, "paying"))

    # Prometheus: per Agent, fleet totals, and the negative-margin counter.
    got = samples(world["metrics"])
    cheap_labels = frozenset({"namespace": namespace, "agent": "cheap", "currency": "EUR"}.items())
    assert got[("aura_agent_margin_month", cheap_labels)] == pytest.approx(4.0 - 5.632)
    assert got[("aura_agent_cost_projected_month", cheap_labels)] == pytest.approx(5.632)
    fleet = frozenset({"currency": "EUR"}.items())
    assert got[("aura_fleet_cost_projected_month", fleet)] == pytest.approx(2 * 5.632)
    assert got[("aura_fleet_margin_month", fleet)] == pytest.approx(29.0 + 4.0 - 2 * 5.632)
    ns_labels = frozenset({"namespace": namespace}.items())
    assert got[("aura_agent_negative_margin_total", ns_labels)] == 1
    assert got[("aura_price_refreshes_total", frozenset())] == 1

    # `kubectl get agents -o wide` carries the cost columns.
    wide = cluster.kubectl("get", "agents", "-n", namespace, "-o", "wide")
    print(wide)
    assert "COST MTD" in wide and "MARGIN" in wide and "-1.632" in wide

    # `aura status` shows the cost columns and a fleet total.
    out = cluster_status(cluster, namespace)
    print(out)
    assert "MARGIN" in out and "23.37" in out and "-1.63" in out
    assert "TOTAL (net, EUR)" in out


def cluster_status(cluster: Cluster, namespace: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "aura", "status", "-n", namespace],
        env={"KUBECONFIG": cluster.kubeconfig, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return proc.stdout
