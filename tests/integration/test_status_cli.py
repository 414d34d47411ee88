"""`aura status` against a real apiserver: the table and the event history."""

from __future__ import annotations

import asyncio
import json
import subprocess
from datetime import UTC, datetime, timedelta

import pytest
from kubernetes import client

from aura.controller.clients.kube import AgentRef
from aura.models import GROUP, PLURAL, VERSION
from tests.events import BURST, interleave, post_burst_in_one_second
from tests.kube import REPO, Cluster

pytestmark = pytest.mark.integration


def aura(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO / ".venv" / "bin" / "aura"), *args], capture_output=True, text=True, timeout=60
    )


def post_event(cluster: Cluster, ns: str, name: str, reason: str, message: str, ago: int) -> None:
    when = datetime.now(UTC) - timedelta(seconds=ago)
    cluster.core.create_namespaced_event(
        ns,
        client.CoreV1Event(
            metadata=client.V1ObjectMeta(generate_name=f"{name}."),
            involved_object=client.V1ObjectReference(
                api_version=f"{GROUP}/{VERSION}", kind="Agent", name=name, namespace=ns
            ),
            reason=reason,
            message=message,
            type="Normal",
            first_timestamp=when,
            last_timestamp=when,
        ),
    )


def test_status_table_and_history(cluster: Cluster, namespace: str) -> None:
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Agent", "metadata": {"name": "alpha"}}
    cluster.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
    since = (datetime.now(UTC) - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    cluster.custom.patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        "alpha",
        {
            "status": {
                "phase": "Running",
                "phaseSince": since,
                "server": {"ipv4": "203.0.113.10"},
                "tailscale": {"ipv4": "100.100.1.2"},
            }
        },
    )
    post_event(cluster, namespace, "alpha", "Provisioning", "server creating", ago=120)
    post_event(cluster, namespace, "alpha", "Running", "healthy after 41s", ago=60)

    table = aura("status", "-n", namespace)
    assert table.returncode == 0, table.stderr
    header, row = table.stdout.splitlines()
    assert header.split()[:3] == ["NAMESPACE", "NAME", "PHASE"]
    assert row.split()[:7] == [
        namespace, "alpha", "Running", "5m", "running", "203.0.113.10", "100.100.1.2",
    ]  # fmt: skip
    assert row.endswith("Running: healthy after 41s")

    history = aura("status", "alpha", "-n", namespace, "--events")
    assert history.returncode == 0, history.stderr
    reasons = [line.split()[2] for line in history.stdout.splitlines()[1:]]
    assert reasons == ["Provisioning", "Running"]


def test_status_of_a_missing_agent_says_so(cluster: Cluster, namespace: str) -> None:
    result = aura("status", "nope", "-n", namespace)
    assert result.returncode == 1
    assert f"agent 'nope' not found in namespace '{namespace}'" in result.stderr


def test_history_lists_events_of_one_second_in_the_order_they_happened(
    cluster: Cluster, namespace: str
) -> None:
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Agent", "metadata": {"name": "burst"}}
    created = cluster.custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, body
    )
    # A core/v1 Event from some other component, seconds earlier (second resolution).
    post_event(cluster, namespace, "burst", "Noticed", "seen by someone else", ago=5)
    ref = AgentRef(namespace, "burst", created["metadata"]["uid"])
    asyncio.run(post_burst_in_one_second(ref))
    expected = interleave(cluster, ref)

    stored = cluster.kubectl("get", "events.events.k8s.io", "-n", namespace, "-o", "json")
    times = {e["eventTime"][:19] for e in json.loads(stored)["items"] if e["reason"] in BURST}
    assert len(times) == 1, times  # all in one second: only microseconds tell them apart
    history = aura("status", "burst", "-n", namespace, "--events")
    assert history.returncode == 0, history.stderr
    rows = [line.split() for line in history.stdout.splitlines()[1:]]
    assert [r[2] for r in rows] == ["Noticed", *expected]
    assert {r[3] for r in rows if r[2] in BURST} == {"aura.dev/operator"}

    table = aura("status", "-n", namespace)
    assert table.stdout.splitlines()[1].endswith(f"{BURST[-1]}: phase {BURST[-1]}")
