"""Self-healing on the real apiserver against the sandbox: failed attempts retry by themselves
after a back-off, and the phase tells the truth about an Agent whose attempt was rolled back."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from aura.controller.clients.kube import AgentRef
from aura.controller.naming import server_name
from aura_sandbox.harness import Sandbox
from tests.kube import Cluster
from tests.operator.harness import (
    OperatorProcess,
    agent_manifest,
    agent_uid,
    apply,
    condition,
    events,
    patch_spec,
    phase,
    servers_of,
    wait_for,
    wait_phase,
)

pytestmark = pytest.mark.integration


def _apply(cluster: Cluster, namespace: str, name: str) -> tuple[str, str]:
    apply(cluster, agent_manifest(name, namespace))
    uid = agent_uid(cluster, namespace, name)
    return uid, server_name(AgentRef(namespace, name, uid))


def test_transient_failures_retry_by_themselves_until_running(
    cluster: Cluster,
    namespace: str,
    sandbox: Sandbox,
    start_operator: Callable[..., OperatorProcess],
) -> None:
    uid, name = _apply(cluster, namespace, "flaky")
    sandbox.inject("server_never_boots", server_name=name, count=2)  # two attempts time out
    start_operator(boot_timeout="2", attempt_backoff_max="3", health_interval="600")
    agent = wait_phase(cluster, namespace, "flaky", "Failed", timeout=60)
    ready = condition(agent, "Ready")
    assert ready["reason"] == "RetryingAfterFailure"
    assert "retrying at" in ready["message"]
    provisioning = agent["status"]["provisioning"]
    assert provisioning["consecutiveFailures"] >= 1 and provisioning["nextAttemptAt"]

    agent = wait_phase(cluster, namespace, "flaky", "Running", timeout=90)
    assert agent["status"].get("provisioning") is None  # success resets the count
    assert "aura.dev/retry" not in (agent["metadata"].get("annotations") or {})
    assert len(servers_of(sandbox, uid)) == 1
    reasons = [e["reason"] for e in events(cluster, namespace, "flaky")]
    assert reasons.count("ServerNeverBooted") == 2
    assert reasons.count("RetryingProvisioning") == 2


def test_rolled_back_then_stopped_shows_stopped_not_stopping(
    cluster: Cluster,
    namespace: str,
    sandbox: Sandbox,
    start_operator: Callable[..., OperatorProcess],
) -> None:
    uid, name = _apply(cluster, namespace, "parked")
    sandbox.inject("server_never_boots", server_name=name)
    start_operator(boot_timeout="2", attempt_backoff_max="3000")
    wait_phase(cluster, namespace, "parked", "Failed", timeout=60)
    wait_for(lambda: servers_of(sandbox, uid) == [], 20, what="rollback")

    patch_spec(cluster, namespace, "parked", {"desiredState": "stopped"})
    agent = wait_phase(cluster, namespace, "parked", "Stopped", timeout=30)
    assert "one will be created on start" in agent["status"]["message"]
    assert condition(agent, "ServerReady")["reason"] == "NoServer"
    time.sleep(3)  # and it stays so: no Stopping, no server
    assert phase(cluster, namespace, "parked") == "Stopped"
    assert servers_of(sandbox, uid) == []

    patch_spec(cluster, namespace, "parked", {"desiredState": "running"})
    wait_phase(cluster, namespace, "parked", "Running", timeout=60)
    assert len(servers_of(sandbox, uid)) == 1


def test_stopped_before_its_device_joined_then_started_comes_up_by_itself(
    cluster: Cluster,
    namespace: str,
    sandbox: Sandbox,
    start_operator: Callable[..., OperatorProcess],
) -> None:
    """The chaos run's defect: the VM will not run `tailscale up` again on a later boot, so the
    resumed attempt must time the join out, roll back and provision a new server."""
    uid, name = _apply(cluster, namespace, "nojoin")
    sandbox.inject("device_never_joins", server_name=name)  # the first server only
    start_operator(tailnet_join_timeout="6", attempt_backoff_max="3")
    wait_phase(cluster, namespace, "nojoin", "Networking", timeout=60)
    [first] = servers_of(sandbox, uid)

    patch_spec(cluster, namespace, "nojoin", {"desiredState": "stopped"})
    agent = wait_phase(cluster, namespace, "nojoin", "Stopped", timeout=30)
    paused = agent["status"]["provisioning"]
    assert paused.get("startedAt") is None and paused.get("failedGeneration") is None, paused
    time.sleep(8)  # longer than the join timeout: a stopped Agent's clocks do not run

    patch_spec(cluster, namespace, "nojoin", {"desiredState": "running"})
    agent = wait_phase(cluster, namespace, "nojoin", "Running", timeout=120)
    assert [s["id"] for s in servers_of(sandbox, uid)] == [agent["status"]["server"]["id"]]
    assert agent["status"]["server"]["id"] != first["id"]
    assert agent["status"].get("provisioning") is None
    reasons = [e["reason"] for e in events(cluster, namespace, "nojoin")]
    assert "DeviceNeverJoined" in reasons and "RolledBack" in reasons


def _set_health(sandbox: Sandbox, server_id: int, **body: object) -> None:
    import httpx

    url = f"{sandbox.ready.admin_url.rstrip('/')}/servers/{server_id}/health"
    httpx.put(url, json=body, timeout=10).raise_for_status()


def test_a_wedged_gateway_is_unhealthy_although_http_answers(
    cluster: Cluster,
    namespace: str,
    sandbox: Sandbox,
    start_operator: Callable[..., OperatorProcess],
) -> None:
    op = start_operator(health_timeout="1")
    apply(cluster, agent_manifest("wedge", namespace))
    agent = wait_phase(cluster, namespace, "wedge", "Running", timeout=60)
    healthy = condition(agent, "Healthy")
    assert "handshake completed" in healthy["message"]  # the token the configurator wrote
    server_id = agent["status"]["server"]["id"]

    _set_health(sandbox, server_id, gateway="wedged", gateway_clears_on="never")
    assert sandbox.server(server_id)["gateway"] == "wedged"
    agent = wait_phase(cluster, namespace, "wedge", "Degraded", timeout=30)
    assert "wedged" in condition(agent, "Healthy")["message"]

    _set_health(sandbox, server_id, gateway="healthy")
    wait_phase(cluster, namespace, "wedge", "Running", timeout=30)
    import base64

    data = cluster.core.read_namespaced_secret("wedge-gateway-token", namespace).data
    token = base64.b64decode(data["OPENCLAW_GATEWAY_TOKEN"]).decode()
    assert len(token) >= 32 and token not in op.log()
