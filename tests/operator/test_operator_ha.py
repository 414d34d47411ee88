"""High availability: two real `aura operator` replicas in kopf peering.

Both run against the same apiserver, namespace and sandbox, peered through a `KopfPeering` in
the namespace (`--peering`, namespace-restricted), with different `--priority`. Only the
higher priority acts on Agents and sweeps orphans; the other stands by. After the active one
is SIGKILLed (no clean-up: its keep-alive record stays until it expires after
`--peering-lifetime`), the standby takes over and converges new and changed Agents, with
exactly one server per Agent.
"""

from __future__ import annotations

import functools
import socket
import time
from collections.abc import Callable

import httpx
import pytest

from aura.controller import naming
from aura_sandbox.harness import Sandbox
from tests.kube import Cluster
from tests.operator.harness import (
    OperatorProcess,
    agent_manifest,
    apply,
    patch_spec,
    servers_of,
    wait_for,
    wait_phase,
)

pytestmark = pytest.mark.integration

PEERING = "aura-ha"
LIFETIME = 10  # seconds; the failover time after a crash


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _replica(
    start_operator: Callable[..., OperatorProcess], peer: str, priority: int, liveness: str
) -> OperatorProcess:
    return start_operator(
        env={"POD_ID": peer},  # kopf's peer identity, as in the Deployment
        peering=PEERING,
        priority=str(priority),
        peering_lifetime=str(LIFETIME),
        liveness=liveness,
    )


def _alive(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _orphan_server(sandbox: Sandbox, namespace: str) -> int:
    """A server labelled as ours whose Agent never existed (e.g. a lost create's leftover)."""
    rsp = httpx.post(
        f"{sandbox.ready.hetzner_url.rstrip('/')}/servers",
        headers={"Authorization": f"Bearer {sandbox.ready.hetzner_token}"},
        json={
            "name": f"aura-{namespace}-ghost-0000000",
            "server_type": "cx22",
            "location": "nbg1",
            "image": "ubuntu-24.04",
            "labels": {
                naming.MANAGED_BY: naming.MANAGED_BY_VALUE,
                naming.AGENT_UID: "00000000-0000-0000-0000-000000000000",
                naming.AGENT_NAMESPACE: namespace,
                naming.AGENT_NAME: "ghost",
            },
        },
        timeout=10,
    )
    assert rsp.status_code == 201, rsp.text
    return int(rsp.json()["server"]["id"])


def _one_server_each(sandbox: Sandbox, uids: list[str]) -> None:
    for uid in uids:
        assert len(servers_of(sandbox, uid)) == 1, (uid, servers_of(sandbox))
    assert len(servers_of(sandbox)) == len(uids), servers_of(sandbox)


def test_standby_replica_takes_over_after_the_active_one_is_killed(
    cluster: Cluster,
    namespace: str,
    sandbox: Sandbox,
    start_operator: Callable[..., OperatorProcess],
) -> None:
    cluster.custom.create_namespaced_custom_object(
        "kopf.dev",
        "v1",
        namespace,
        "kopfpeerings",
        {"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": PEERING}},
    )
    where = f"KopfPeering {namespace}/{PEERING}"
    urls = [f"http://127.0.0.1:{_free_port()}/healthz" for _ in range(2)]
    high = _replica(start_operator, "replica-high", 200, urls[0])
    wait_for(lambda: f"active replica in {where}" in high.log(), 30, what="high active")
    # Started once the active replica's keep-alive exists, the standby never acts at all.
    low = _replica(start_operator, "replica-low", 100, urls[1])
    wait_for(
        lambda: f"standing by in {where} in favour of replica-high" in low.log(),
        30,
        what="low standing by",
    )
    # Both answer their liveness probe (`--liveness`), the paused standby too.
    for url in urls:
        wait_for(functools.partial(_alive, url), 30, what=f"liveness {url}")

    # Only the active replica reconciles Agents and sweeps orphans.
    apply(cluster, agent_manifest("ha-alpha", namespace))
    alpha = wait_phase(cluster, namespace, "ha-alpha", "Running")
    ghost = _orphan_server(sandbox, namespace)
    wait_for(lambda: all(s["id"] != ghost for s in servers_of(sandbox)), 30, what="orphan swept")
    # kopf's per-object lines name the Agent through its server's name (aura-<ns>-<name>-…).
    assert f"created server {alpha['status']['server']['id']} (aura-{namespace}-ha-alpha-" in (
        high.log()
    )
    assert "deleting orphaned server" in high.log()
    standby = low.log()
    assert "ha-alpha" not in standby
    assert "kopf.objects" not in standby, "the standby handled an object"
    assert "deleting orphaned server" not in standby
    assert "Resuming operations" not in standby
    _one_server_each(sandbox, [alpha["metadata"]["uid"]])

    # The active replica dies without clean-up; its keep-alive lingers until it expires.
    high.kill()
    killed = time.monotonic()
    apply(cluster, agent_manifest("ha-beta", namespace))
    patch_spec(cluster, namespace, "ha-alpha", {"desiredState": "stopped"})
    beta = wait_phase(cluster, namespace, "ha-beta", "Running", timeout=LIFETIME + 30)
    took_over = time.monotonic() - killed
    wait_phase(cluster, namespace, "ha-alpha", "Stopped", timeout=30)

    log = low.log()
    assert "Resuming operations after the pause" in log
    assert f"active replica in {where}" in log
    assert f"created server {beta['status']['server']['id']} (aura-{namespace}-ha-beta-" in log
    assert "event Stopped:" in log  # ha-alpha's change, converged by the new active replica
    assert "ha-beta" not in high.log()
    assert took_over < LIFETIME + 30, took_over
    _one_server_each(sandbox, [alpha["metadata"]["uid"], beta["metadata"]["uid"]])


def test_default_priority_is_stable_in_range_and_distinct_per_pod() -> None:
    from aura.controller.peering import PRIORITY_MAX, default_priority

    a, b = (
        default_priority("aura-operator-7d9f-abcde"),
        default_priority("aura-operator-7d9f-fghij"),
    )
    assert a == default_priority("aura-operator-7d9f-abcde")
    assert a != b
    assert all(1 <= p <= PRIORITY_MAX for p in (a, b, default_priority("")))


async def test_the_sweeper_gate_follows_kopfs_pausing_rule() -> None:
    from datetime import UTC, datetime, timedelta

    from aura.controller.peering import PeeringGate

    def seen(ago: float) -> str:
        return (datetime.now(UTC) - timedelta(seconds=ago)).isoformat()

    class Reader:
        records: dict[str, dict[str, object]] | None = None

        async def peering_records(
            self, name: str, namespace: str | None
        ) -> dict[str, dict[str, object]] | None:
            assert (name, namespace) == ("aura", "ns")
            return self.records

    reader = Reader()
    assert await PeeringGate(reader, None, "ns", identity="me", priority=5).active()  # standalone
    gate = PeeringGate(reader, "aura", "ns", identity="me", priority=5)
    assert not await gate.active()  # no peering object: kopf stays paused too
    me = {"priority": 5, "lifetime": 10, "lastseen": seen(0)}
    reader.records = {"me": me, "low": {"priority": 1, "lifetime": 10, "lastseen": seen(0)}}
    assert await gate.active()
    reader.records["high"] = {"priority": 9, "lifetime": 10, "lastseen": seen(1)}
    assert not await gate.active()
    reader.records["high"]["lastseen"] = seen(11)  # expired: a crashed peer
    assert await gate.active()
    reader.records["twin"] = {"priority": 5, "lifetime": 10, "lastseen": seen(0)}
    assert not await gate.active()  # equal priorities: kopf pauses everyone
