"""The dunning timeline on the real apiserver: payment failed -> `suspended` at once ->
`hibernated` at a durable deadline (flag, or the price's metadata) -> paid -> `running`.

These check the desired states the bridge writes; the operator acting on `hibernated` (a
checkpoint, then no server) is the operator's tests' business, and `aura demo`'s dunning step
shows both together."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import stripe
from kubernetes import watch as kwatch
from kubernetes.client.exceptions import ApiException
from kubernetes_asyncio import config as kconfig

from aura.bridge import dunning, mapping
from aura.bridge.agents import ANNOTATION_HIBERNATE_AT, ANNOTATION_PAST_DUE_SINCE
from aura.bridge.app import create_app
from aura.bridge.config import BridgeConfig
from aura.bridge.stripe_api import StripeClientApi
from aura.models import GROUP, PLURAL, VERSION, DesiredState
from aura_sandbox.harness import Sandbox
from tests.bridge.conftest import (
    SECRET,
    TOKEN,
    Bridge,
    LateStripe,
    checkout,
    make_event,
    serving,
    subscription_obj,
)
from tests.kube import Cluster
from tests.polling import wait_for_async

HOUR = 3600.0


def annotations(bridge: Bridge, name: str) -> dict[str, str]:
    return dict(bridge.agent(name)["metadata"].get("annotations") or {})


def state(bridge: Bridge, name: str) -> str:
    return str(bridge.agent(name)["spec"]["desiredState"])


async def fail_payment(bridge: Bridge, sub: str, cus: str, status: str = "past_due") -> None:
    bridge.stripe.subscriptions[sub]["status"] = status
    event = make_event("customer.subscription.updated", subscription_obj(sub, cus, status))
    response = await bridge.send(event)
    assert response.status_code == 200, response.text


def writes(bridge: Bridge, name: str, since_version: str) -> list[str]:
    """The desired states of every write to the Agent after `since_version`, from the
    apiserver's watch (so a second writer would show as a second entry)."""
    seen: list[str] = []
    stream = kwatch.Watch().stream(
        bridge.cluster.custom.list_namespaced_custom_object,
        GROUP,
        VERSION,
        bridge.namespace,
        PLURAL,
        field_selector=f"metadata.name={name}",
        resource_version=since_version,
        timeout_seconds=1,
    )
    for event in stream:
        if event["type"] == "MODIFIED":
            seen.append(str(event["object"]["spec"]["desiredState"]))
    return seen


async def shift_clock(bridge: Bridge, seconds: float) -> None:
    """Move the bridge's clock on, once its start-up sweep is over (only ours runs then)."""
    await bridge.app.state.swept.wait()
    processor = bridge.app.state.processor
    real = processor.clock
    processor.clock = lambda: real() + seconds


def test_parse_duration_and_metadata_rules() -> None:
    assert dunning.parse_duration("3600") == 3600
    assert dunning.parse_duration("36h") == 36 * HOUR
    assert dunning.parse_duration(" 7d ") == 7 * 86400
    assert dunning.parse_duration("never") == 0
    with pytest.raises(ValueError, match="72h"):
        dunning.parse_duration("three days")
    price = {
        "id": "price_x",
        "metadata": {},
        "product": {"metadata": {"aura_hibernate_after": "2h"}},
    }
    sub = {"items": {"data": [{"price": price}]}}
    assert dunning.hibernate_after(sub, 99.0) == (2 * HOUR, "product metadata aura_hibernate_after")
    price["metadata"] = {"aura_hibernate_after": "30m"}
    assert dunning.hibernate_after(sub, 99.0) == (1800, "price metadata aura_hibernate_after")
    price["metadata"] = {"aura_hibernate_after": "soon"}  # malformed: the next rule applies
    assert dunning.hibernate_after(sub, 99.0)[0] == 2 * HOUR
    assert dunning.hibernate_after(None, 99.0) == (99.0, "--hibernate-after")
    assert dunning.describe(259200) == "3d"


def test_decide_dunning_timeline() -> None:
    def at(now: float, status: str = "past_due", **kw: Any) -> mapping.Decision:
        return mapping.decide(
            status, reason="r", past_due_since=1000.0, now=now, grace=60, hibernate_after=HOUR, **kw
        )

    assert at(1030).state is None  # inside the past-due grace
    assert at(1030).hibernate_at == 1000 + 60 + HOUR
    assert at(1061).state is DesiredState.SUSPENDED
    assert at(1060 + HOUR).state is DesiredState.HIBERNATED
    # unpaid: Stripe gave up retrying, no past-due grace: suspended at once
    assert at(1000, "unpaid").state is DesiredState.SUSPENDED
    assert at(1000, "unpaid").hibernate_at == 1000 + HOUR
    # a recorded deadline (passed when the subscription, so its plan, is unknown) stands
    assert at(1100, hibernate_at=1100.0).state is DesiredState.HIBERNATED
    never = mapping.decide("past_due", reason="r", past_due_since=0.0, now=1e9, grace=0)
    assert never.state is DesiredState.SUSPENDED and never.hibernate_at is None
    paid = at(1e9, "active", hibernate_at=5.0)
    assert paid.state is DesiredState.RUNNING
    assert paid.past_due_since is None and paid.hibernate_at is None


async def test_timeline_suspend_hibernate_pay(make_bridge: Any) -> None:
    bridge: Bridge = await make_bridge(hibernate_after=HOUR)
    sub, cus, _ = await checkout(bridge, "dunner")
    await fail_payment(bridge, sub, cus)
    assert state(bridge, "dunner") == "suspended"  # at once, as before
    notes = annotations(bridge, "dunner")
    since = float(notes[ANNOTATION_PAST_DUE_SINCE])
    assert float(notes[ANNOTATION_HIBERNATE_AT]) == pytest.approx(since + HOUR, abs=0.01)

    processor = bridge.app.state.processor
    await processor.sweep_grace()
    assert state(bridge, "dunner") == "suspended"  # not due yet
    await shift_clock(bridge, HOUR + 1)
    # The sweep is cluster-wide (other tests' Agents may be due too): count this Agent's writes.
    before = bridge.agent("dunner")["metadata"]["resourceVersion"]
    assert await processor.sweep_grace() >= 1
    await processor.sweep_grace()  # idempotent: nothing left to do for it
    assert writes(bridge, "dunner", before) == ["hibernated"]
    agent = bridge.agent("dunner")
    assert "dunning grace" in agent["spec"]["desiredStateReason"]

    # Another failed retry changes nothing: the Agent stays hibernated (never back to suspended).
    await fail_payment(bridge, sub, cus, "unpaid")
    assert state(bridge, "dunner") == "hibernated"

    bridge.stripe.subscriptions[sub]["status"] = "active"
    paid = {"id": "in_paid", "object": "invoice", "customer": cus, "subscription": sub}
    response = await bridge.send(make_event("invoice.paid", paid))
    assert response.json()["outcome"] == "applied"
    assert state(bridge, "dunner") == "running"
    notes = annotations(bridge, "dunner")
    assert ANNOTATION_HIBERNATE_AT not in notes and ANNOTATION_PAST_DUE_SINCE not in notes


async def test_price_metadata_sets_the_plans_grace(make_bridge: Any) -> None:
    bridge: Bridge = await make_bridge(hibernate_after=HOUR)
    sub, cus, _ = await checkout(bridge, "premium")
    price = bridge.stripe.subscriptions[sub]["items"]["data"][0]["price"]
    price["metadata"] = {"aura_hibernate_after": "7d"}
    await fail_payment(bridge, sub, cus)
    notes = annotations(bridge, "premium")
    since = float(notes[ANNOTATION_PAST_DUE_SINCE])
    assert float(notes[ANNOTATION_HIBERNATE_AT]) == pytest.approx(since + 7 * 86400, abs=0.01)
    await shift_clock(bridge, 2 * HOUR)  # past the flag's grace, not the plan's
    await bridge.app.state.processor.sweep_grace()
    assert state(bridge, "premium") == "suspended"


def hibernate_deadline_passes(cluster: Cluster, namespace: str, name: str) -> None:
    """The deadline passes (as if days went by): moved into the past on the apiserver."""
    cluster.custom.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        name,
        {"metadata": {"annotations": {ANNOTATION_HIBERNATE_AT: "1.000"}}},
    )


async def test_a_deadline_that_passed_while_no_bridge_ran_is_acted_on_at_start(
    make_bridge: Any, cluster: Cluster, namespace: str
) -> None:
    first: Bridge = await make_bridge(hibernate_after=HOUR, grace_sweep_interval=3600)
    sub, cus, _ = await checkout(first, "sleeper")
    await fail_payment(first, sub, cus)
    assert state(first, "sleeper") == "suspended"
    hibernate_deadline_passes(cluster, namespace, "sleeper")
    # A fresh bridge (nothing in memory, no event): its start-up sweep hibernates the Agent.
    fresh: Bridge = await make_bridge(hibernate_after=HOUR, grace_sweep_interval=3600)
    fresh.stripe.subscriptions = first.stripe.subscriptions
    await wait_for_async(lambda: state(fresh, "sleeper") == "hibernated", within=10)


async def test_two_replicas_sweeping_at_once_write_once(
    make_bridge: Any, cluster: Cluster, namespace: str
) -> None:
    a: Bridge = await make_bridge(hibernate_after=HOUR, grace_sweep_interval=3600)
    b: Bridge = await make_bridge(hibernate_after=HOUR, grace_sweep_interval=3600)
    await a.app.state.swept.wait()
    await b.app.state.swept.wait()
    b.stripe = a.stripe
    b.app.state.processor._grace.stripe_api = a.stripe
    sub, cus, _ = await checkout(a, "shared")
    await fail_payment(a, sub, cus)
    hibernate_deadline_passes(cluster, namespace, "shared")
    before = a.agent("shared")["metadata"]["resourceVersion"]
    counts = await asyncio.gather(
        a.app.state.processor.sweep_grace(), b.app.state.processor.sweep_grace()
    )
    assert sum(counts) >= 1
    await b.app.state.processor.sweep_grace()
    assert writes(a, "shared", before) == ["hibernated"]


async def test_sweep_spares_a_subscription_stripe_says_is_paid(make_bridge: Any) -> None:
    bridge: Bridge = await make_bridge(hibernate_after=HOUR)
    sub, cus, _ = await checkout(bridge, "rescued")
    await fail_payment(bridge, sub, cus)
    bridge.stripe.subscriptions[sub]["status"] = "active"  # paid; the event is still in flight
    await shift_clock(bridge, HOUR + 1)
    await bridge.app.state.processor.sweep_grace()
    assert state(bridge, "rescued") == "suspended"


@pytest.mark.integration
async def test_dunning_timeline_through_the_sandboxes_stripe(
    cluster: Cluster, namespace: str
) -> None:
    """Signed events from the sandbox's Stripe, a price whose metadata sets a 1 s grace."""
    api = await kconfig.new_client_from_config(config_file=cluster.kubeconfig)
    holder: dict[str, Any] = {}
    config = BridgeConfig(
        webhook_secrets=(SECRET,),
        api_tokens=frozenset({TOKEN}),
        default_namespace=namespace,
        grace_sweep_interval=0.2,
    )
    app = create_app(config, api, LateStripe(holder))

    def desired() -> str | None:
        try:
            agent = cluster.custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, "unpaid"
            )
        except ApiException as exc:
            if exc.status != 404:
                raise
            return None
        return str(agent["spec"]["desiredState"])

    async with app.router.lifespan_context(app), serving(app) as url:
        with Sandbox(
            time_scale=0.001,
            stripe_webhook_url=f"{url}/v1/stripe/webhook",
            stripe_webhook_secret=SECRET,
        ) as sb:
            holder["api"] = StripeClientApi(sb.info["stripe_api_key"], sb.info["stripe_url"])
            client = stripe.StripeClient(
                sb.info["stripe_api_key"], base_addresses={"api": sb.info["stripe_url"]}
            )
            customer = await asyncio.to_thread(client.v1.customers.create, {"email": "d@x.io"})
            price = await asyncio.to_thread(
                client.v1.prices.create,
                {
                    "currency": "eur",
                    "unit_amount": 2900,
                    "recurring": {"interval": "month"},
                    "metadata": {"aura_hibernate_after": "1s"},
                },
            )
            session = await asyncio.to_thread(
                client.v1.checkout.sessions.create,
                {
                    "mode": "subscription",
                    "customer": customer.id,
                    "line_items": [{"price": price.id, "quantity": 1}],
                    "metadata": {"agent_name": "unpaid"},
                    "success_url": "https://example.com/ok",
                },
            )
            admin = httpx.AsyncClient(base_url=sb.ready.admin_url.removesuffix("/admin"))
            done = await admin.post(f"/admin/stripe/checkout/{session.id}/complete")
            sub_id = done.json()["subscription"]
            await wait_for_async(lambda: desired() == "running", what="running")
            failed = await admin.post(f"/admin/stripe/subscriptions/{sub_id}/fail_payment", json={})
            assert failed.status_code == 200
            await wait_for_async(lambda: desired() in ("suspended", "hibernated"), what="unpaid")
            await wait_for_async(lambda: desired() == "hibernated", within=20, what="hibernated")
            paid = await admin.post(f"/admin/stripe/invoices/{failed.json()['id']}/pay")
            assert paid.status_code == 200
            await wait_for_async(lambda: desired() == "running", what="woken")
            await admin.aclose()
            await holder["api"].close()
    await api.close()
