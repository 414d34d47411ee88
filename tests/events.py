"""Posting a burst of Agent Events within one second, through the operator's own client."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC

from kubernetes import client

from aura import history
from aura.controller.clients.kube import AgentRef, KubeClients
from aura.models import API_VERSION
from tests.kube import Cluster

# Phase Events of one quick provisioning, in the order they happen.
BURST = ["Provisioning", "Configuring", "Networking", "Starting", "Running", "Degraded"]


async def post_burst_in_one_second(ref: AgentRef) -> None:
    """Post `BURST` as the operator does (events.k8s.io/v1, `KubeClients.post`), all inside
    one wall-clock second: the names the apiserver generates (and so its list order) are
    random, and second-resolution timestamps would all be equal."""
    kube = await KubeClients.connect()
    try:
        await asyncio.sleep(1 - time.time() % 1 + 0.01)  # the start of a fresh second
        second = int(time.time())
        for reason in BURST:
            await kube.post(ref, "Normal", reason, f"phase {reason}")
        assert int(time.time()) == second, "the burst took more than a second"
    finally:
        await kube.close()


def interleave(cluster: Cluster, ref: AgentRef) -> list[str]:
    """Post two events.k8s.io Events from another controller whose `eventTime`s fall between
    the burst's (microseconds apart, same second), written after the whole burst and named to
    sort first: only the event time puts them in place, not the name, not the write order.
    Returns every reason in the order the Events happened."""
    events = client.EventsV1Api(cluster.api)
    response = events.list_namespaced_event(
        ref.namespace, field_selector=f"regarding.name={ref.name}", _preload_content=False
    )
    listed = json.loads(response.data)["items"]
    burst = sorted(
        (history.parse_time(e["eventTime"]), e["reason"]) for e in listed if e["reason"] in BURST
    )
    assert [reason for _, reason in burst] == BURST, burst
    expected = list(BURST)
    for after_index, reason in ((3, "Probed"), (1, "Scheduled")):  # later insertion first
        before, after = burst[after_index][0], burst[after_index + 1][0]
        when = before + (after - before) / 2
        assert when.second == before.second and before < when < after
        body = {
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {"name": f"{ref.name}.0-{reason.lower()}"},
            "regarding": {
                "apiVersion": API_VERSION,
                "kind": "Agent",
                "namespace": ref.namespace,
                "name": ref.name,
                "uid": ref.uid,
            },
            "eventTime": when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "reportingController": "example.com/observer",
            "reportingInstance": "test",
            "action": "Observe",
            "reason": reason,
            "note": f"{reason} between {burst[after_index][1]} and {burst[after_index + 1][1]}",
            "type": "Normal",
        }
        events.create_namespaced_event(ref.namespace, body)
        expected.insert(after_index + 1, reason)
    return expected
