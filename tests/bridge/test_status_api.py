"""The status API and its SSE stream, against the real apiserver."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from aura.controller.clients.kube import AgentRef
from aura.models import GROUP, PLURAL, VERSION
from tests.bridge.conftest import TOKEN, Bridge, checkout, serving
from tests.events import BURST, interleave, post_burst_in_one_second
from tests.kube import Cluster

pytestmark = pytest.mark.integration
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def set_phase(cluster: Cluster, namespace: str, name: str, phase: str, ip: str) -> None:
    cluster.custom.patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        name,
        {
            "status": {
                "phase": phase,
                "server": {"ipv4": ip},
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True" if phase == "Running" else "False",
                        "reason": phase,
                        "message": "",
                        "lastTransitionTime": "2026-11-21T20:00:00Z",
                    }
                ],
            }
        },
    )


async def test_auth_is_required(bridge: Bridge) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong-token"}, {"Authorization": "Basic eA=="}):
        response = await bridge.http.get(
            "/v1/agents", params={"customer": "cus_1"}, headers=headers
        )
        assert response.status_code == 401, response.text
        assert TOKEN not in response.text
    assert (await bridge.http.get("/healthz")).status_code == 200


async def test_list_and_get(bridge: Bridge, cluster: Cluster) -> None:
    sub, cus, _ = await checkout(bridge, "shown")
    await checkout(bridge, "someone-elses")
    set_phase(cluster, bridge.namespace, "shown", "Running", "203.0.113.7")
    listed = await bridge.http.get("/v1/agents", params={"customer": cus}, headers=AUTH)
    assert listed.status_code == 200
    items = listed.json()["items"]
    assert [i["name"] for i in items] == ["shown"]
    one = await bridge.http.get(f"/v1/agents/{bridge.namespace}/shown", headers=AUTH)
    assert one.status_code == 200
    view = one.json()
    assert view["phase"] == "Running"
    assert view["desiredState"] == "running"
    assert view["publicIpv4"] == "203.0.113.7"
    assert view["subscriptionId"] == sub
    assert view["conditions"][0]["type"] == "Ready"
    assert view["lastStripeEventId"] == bridge.posted[-2]["id"]
    assert view["createdAt"]
    missing = await bridge.http.get(f"/v1/agents/{bridge.namespace}/nope", headers=AUTH)
    assert missing.status_code == 404
    bad = await bridge.http.get("/v1/agents", params={"customer": "not-a-customer"}, headers=AUTH)
    assert bad.status_code == 422


async def test_readyz_and_openapi(bridge: Bridge) -> None:
    for _ in range(100):
        if (await bridge.http.get("/readyz")).status_code == 200:
            break
        await asyncio.sleep(0.05)
    assert (await bridge.http.get("/readyz")).json() == {"status": "ready"}
    schema = (await bridge.http.get("/openapi.json")).json()
    assert "/v1/stripe/webhook" in schema["paths"]
    assert "/v1/agents/{namespace}/{name}" in schema["paths"]


async def read_events(
    lines: AsyncIterator[str], count: int
) -> list[tuple[str, dict[str, Any], float]]:
    """The next `count` SSE events as (kind, data, arrival time)."""
    events: list[tuple[str, dict[str, Any], float]] = []
    kind = ""
    async for line in lines:
        if line.startswith("event: "):
            kind = line.removeprefix("event: ")
        elif line.startswith("data: "):
            events.append((kind, json.loads(line.removeprefix("data: ")), time.monotonic()))
            if len(events) == count:
                return events
    return events


@pytest.mark.parametrize("scope", ["agent", "customer"])
async def test_sse_pushes_phase_changes_within_a_second(
    bridge: Bridge, cluster: Cluster, scope: str
) -> None:
    _, cus, _ = await checkout(bridge, "streamed")
    await asyncio.wait_for(bridge.app.state.watcher.synced.wait(), 10)
    path = (
        f"/v1/agents/{bridge.namespace}/streamed/events"
        if scope == "agent"
        else f"/v1/customers/{cus}/events"
    )
    async with (
        serving(bridge.app) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as http,
        http.stream("GET", path, headers=AUTH) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.aiter_lines()
        snapshot = await asyncio.wait_for(read_events(lines, 1), 5)
        assert snapshot[0][0] == "snapshot"
        assert snapshot[0][1]["name"] == "streamed"
        changed_at = time.monotonic()
        await asyncio.to_thread(
            set_phase, cluster, bridge.namespace, "streamed", "Provisioning", "198.51.100.1"
        )
        change = await asyncio.wait_for(read_events(lines, 1), 5)
    kind, data, arrived = change[0]
    assert kind == "change"
    assert data["phase"] == "Provisioning"
    assert arrived - changed_at < 1.0


async def test_sse_for_a_missing_agent_is_404(bridge: Bridge) -> None:
    response = await bridge.http.get(f"/v1/agents/{bridge.namespace}/ghost/events", headers=AUTH)
    assert response.status_code == 404


async def test_history_lists_events_in_the_order_they_happened(
    bridge: Bridge, cluster: Cluster
) -> None:
    await checkout(bridge, "told")
    agent = bridge.agent("told")
    ref = AgentRef(bridge.namespace, "told", agent["metadata"]["uid"])
    await post_burst_in_one_second(ref)
    expected = await asyncio.to_thread(interleave, cluster, ref)
    response = await bridge.http.get(f"/v1/agents/{bridge.namespace}/told/history", headers=AUTH)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["namespace"], body["name"]) == (bridge.namespace, "told")
    items = [i for i in body["items"] if i["reason"] in expected]
    assert [i["reason"] for i in items] == expected
    assert [i["message"] for i in items if i["reason"] in BURST] == [f"phase {r}" for r in BURST]
    assert {i["reporter"] for i in items if i["reason"] not in BURST} == {"example.com/observer"}
    times = [i["time"] for i in items]
    assert len({t[:19] for t in times}) == 1 and times == sorted(times), times
    missing = await bridge.http.get(f"/v1/agents/{bridge.namespace}/nope/history", headers=AUTH)
    assert missing.status_code == 404
    anonymous = await bridge.http.get(f"/v1/agents/{bridge.namespace}/told/history")
    assert anonymous.status_code == 401
