"""After Running: the health timer flips Degraded and back, drift behind our back converges,
the orphan sweeper removes what no Agent claims, and steady state costs few Hetzner calls."""

from __future__ import annotations

import re
import socket
import time
import urllib.request
from collections.abc import Callable

import pytest
from hcloud.servers import Server

from aura_sandbox.harness import Sandbox
from tests.kube import Cluster
from tests.operator.harness import (
    OperatorProcess,
    agent_manifest,
    apply,
    apply_running,
    condition,
    devices,
    events,
    get_agent,
    servers_of,
    wait_for,
    wait_phase,
)

pytestmark = pytest.mark.integration


def _set_configured(sandbox: Sandbox, server_id: int, value: bool) -> None:
    def change(world: object) -> None:
        world.servers[server_id].configured = value  # type: ignore[attr-defined]

    sandbox.call(change)


def test_health_timer_flips_degraded_and_back(
    cluster: Cluster,
    namespace: str,
    sandbox: Sandbox,
    start_operator: Callable[..., OperatorProcess],
) -> None:
    start_operator()
    agent = apply_running(cluster, namespace, "gw")
    server_id = agent["status"]["server"]["id"]

    _set_configured(sandbox, server_id, False)  # the gateway stops answering
    agent = wait_phase(cluster, namespace, "gw", "Degraded", timeout=20)
    healthy = condition(agent, "Healthy")
    assert healthy["status"] == "False" and healthy["reason"] == "GatewayUnhealthy"

    _set_configured(sandbox, server_id, True)
    wait_phase(cluster, namespace, "gw", "Running", timeout=20)
    reasons = [e["reason"] for e in events(cluster, namespace, "gw")]
    assert "Degraded" in reasons and "Unhealthy" in reasons
    assert reasons.count("Running") >= 2


def test_drift_power_off_and_delete_behind_our_back_converge(
    cluster: Cluster,
    namespace: str,
    sandbox: Sandbox,
    start_operator: Callable[..., OperatorProcess],
) -> None:
    start_operator()
    agent = apply_running(cluster, namespace, "drift")
    uid, first = agent["metadata"]["uid"], agent["status"]["server"]["id"]
    hcloud = sandbox.ready.hcloud()

    hcloud.servers.power_off(Server(first))
    wait_for(
        lambda: (
            "ServerPoweredOffExternally"
            in {e["reason"] for e in events(cluster, namespace, "drift")}
        ),
        30,
        what="power-off drift event",
    )
    agent = wait_phase(cluster, namespace, "drift", "Running", timeout=30)
    assert agent["status"]["server"]["id"] == first

    hcloud.servers.delete(Server(first))
    wait_for(
        lambda: "ServerMissing" in {e["reason"] for e in events(cluster, namespace, "drift")},
        30,
        what="server-missing drift event",
    )

    def replaced() -> dict[str, object] | None:
        agent = get_agent(cluster, namespace, "drift") or {}
        status = agent.get("status", {})
        if status.get("phase") == "Running" and status["server"]["id"] != first:
            return agent
        return None

    agent = wait_for(replaced, 60, what="a replacement server, Running")
    assert len(servers_of(sandbox, uid)) == 1
    hostnames = [d["hostname"] for d in devices(sandbox) if d["hostname"].startswith("aura-")]
    assert len(hostnames) == 1, hostnames  # the stale device was removed


def test_sweeper_deletes_orphans_of_agents_that_vanished(
    cluster: Cluster,
    namespace: str,
    sandbox: Sandbox,
    start_operator: Callable[..., OperatorProcess],
) -> None:
    op = start_operator()
    apply(cluster, agent_manifest("kept", namespace))
    apply(cluster, agent_manifest("ghost", namespace))
    kept = wait_phase(cluster, namespace, "kept", "Running")
    ghost = wait_phase(cluster, namespace, "ghost", "Running")

    # The ghost Agent disappears without its finalizer running (operator down, finalizer
    # stripped by hand): its server and device are orphans.
    op.stop()
    cluster.custom.patch_namespaced_custom_object(
        "aura.dev", "v1alpha1", namespace, "agents", "ghost", {"metadata": {"finalizers": None}}
    )
    cluster.kubectl("delete", "agent", "ghost", "-n", namespace)
    assert servers_of(sandbox, ghost["metadata"]["uid"])
    op.start()

    wait_for(lambda: servers_of(sandbox, ghost["metadata"]["uid"]) == [], 30, what="swept")
    ghost_host = ghost["status"]["tailscale"]["hostname"]
    wait_for(lambda: ghost_host not in {d["hostname"] for d in devices(sandbox)}, 30, what="device")
    assert "deleting orphaned server" in op.log()
    # The Agent that still exists keeps everything.
    assert len(servers_of(sandbox, kept["metadata"]["uid"])) == 1
    assert kept["status"]["tailscale"]["hostname"] in {d["hostname"] for d in devices(sandbox)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_steady_state_uses_list_calls_and_exports_call_metrics(
    cluster: Cluster,
    namespace: str,
    sandbox: Sandbox,
    start_operator: Callable[..., OperatorProcess],
) -> None:
    port = _free_port()
    start_operator(metrics_port=str(port), server_list_max_age="1", sweep_interval="3600")
    names = [f"eco{i}" for i in range(4)]
    for name in names:
        apply(cluster, agent_manifest(name, namespace))
    for name in names:
        wait_phase(cluster, namespace, name, "Running")

    before = sandbox.request_counts()
    window = 6.0
    time.sleep(window)
    after = sandbox.request_counts()
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    delta = {k: v for k, v in delta.items() if v and k.split()[1].startswith("/v1/")}
    # No per-agent GETs: only the shared list, at most once per max-age (plus slack).
    assert delta.get("GET /v1/servers/{id}", 0) == 0, delta
    assert delta.get("GET /v1/servers", 0) <= window / 1.0 + 2, delta
    assert set(delta) <= {"GET /v1/servers"}, delta

    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    calls = re.findall(
        r'aura_cloud_api_calls_total\{api="hetzner",endpoint="([^"]+)",method="(\w+)"\} (\S+)',
        text,
    )
    by_endpoint = {(m, e): float(v) for e, m, v in calls}
    assert by_endpoint[("POST", "/servers")] == len(names)
    assert by_endpoint[("GET", "/servers")] >= 1
    assert "aura_hetzner_ratelimit_remaining" in text
    assert 'aura_agents{phase="Running"} 4.0' in text
